//! Change streams and live queries of a remote cluster: a server-sent event stream from one node
//! (`GET /db/changes`, `GET /db/watch` with `hiqlite_kv`, so values arrive exactly). A change
//! stream that breaks (the node stopped, the connection dropped) reconnects to the nearest node
//! that answers, resuming at its cursor with `Last-Event-ID`, so it never skips or repeats.

use std::time::Duration;

use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

use super::transport::Target;
use super::Remote;
use crate::changes::{Change, ChangeCursor};
use crate::error::{Error, Result};
use crate::value::{Rows, Statement};

/// One server-sent event.
struct SseEvent {
    event: String,
    data: String,
}

/// A server-sent event stream being read.
struct Sse {
    resp: reqwest::Response,
    buf: Vec<u8>,
}

impl Remote {
    async fn open_sse(&self, path_and_query: &str, last_id: Option<String>) -> Result<(String, Sse)> {
        let base = self.pick(Target::Nearest);
        let url = format!("{base}{path_and_query}");
        let mut rb = self.http.get(&url);
        if let Some(a) = &self.auth {
            rb = rb.header(reqwest::header::AUTHORIZATION, a);
        }
        if let Some(id) = last_id {
            rb = rb.header("last-event-id", id);
        }
        let resp = match rb.send().await {
            Ok(r) => r,
            Err(e) => {
                self.mark_down(&base);
                return Err(Error::Unreachable(format!("{url}: {e}")));
            }
        };
        let status = resp.status();
        if !status.is_success() {
            let body = resp.bytes().await.unwrap_or_default();
            return Err(super::transport::error_from_status(status, &body));
        }
        Ok((base, Sse { resp, buf: Vec::new() }))
    }

    pub(crate) async fn changes(
        self: &std::sync::Arc<Self>,
        from: Option<ChangeCursor>,
        tables: &[String],
        old: bool,
    ) -> Result<RemoteChanges> {
        let mut q = String::from("/db/changes?hiqlite_kv");
        if !tables.is_empty() {
            q.push_str("&tables=");
            q.push_str(&utf8_percent_encode(&tables.join(","), NON_ALPHANUMERIC).to_string());
        }
        if old {
            q.push_str("&old");
        }
        let (node, sse) = self.open_sse(&q, from.map(|c| c.to_string())).await?;
        Ok(RemoteChanges { remote: self.clone(), query: q, cursor: from, node, sse: Some(sse) })
    }

    pub(crate) async fn watch(&self, stmt: &Statement) -> Result<RemoteWatch> {
        let encoded = crate::rqlite::encode_statements(std::slice::from_ref(stmt))?;
        let arr: Vec<serde_json::Value> = match serde_json::from_slice::<serde_json::Value>(&encoded) {
            Ok(serde_json::Value::Array(mut v)) if v.len() == 1 => match v.remove(0) {
                serde_json::Value::Array(s) => s,
                serde_json::Value::String(s) => vec![serde_json::Value::String(s)],
                other => return Err(Error::Decode(format!("unexpected statement encoding {other}"))),
            },
            _ => return Err(Error::Decode("unexpected statement encoding".into())),
        };
        let sql = arr.first().and_then(|s| s.as_str()).unwrap_or_default().to_owned();
        let params = serde_json::Value::Array(arr.into_iter().skip(1).collect()).to_string();
        let q = format!(
            "/db/watch?hiqlite_kv&q={}&params={}",
            utf8_percent_encode(&sql, NON_ALPHANUMERIC),
            utf8_percent_encode(&params, NON_ALPHANUMERIC)
        );
        let (_, sse) = self.open_sse(&q, None).await?;
        Ok(RemoteWatch { sse })
    }
}

impl Sse {
    async fn next(&mut self) -> Result<SseEvent> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buf.drain(..end + 2).collect();
                let text =
                    std::str::from_utf8(&block).map_err(|e| Error::Decode(format!("event stream: {e}")))?;
                let (mut event, mut data) = (String::from("message"), String::new());
                for line in text.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim_start().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        if !data.is_empty() {
                            data.push('\n');
                        }
                        data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if data.is_empty() {
                    // A comment or a keep-alive.
                    continue;
                }
                return Ok(SseEvent { event, data });
            }
            match self.resp.chunk().await {
                Ok(Some(c)) => self.buf.extend_from_slice(&c),
                Ok(None) => return Err(Error::Unreachable("the event stream ended".into())),
                Err(e) => return Err(Error::Unreachable(format!("the event stream broke: {e}"))),
            }
        }
    }
}

/// An `error` event: the node's exact error when it sent one.
fn error_of(data: &str) -> Error {
    let v: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
    serde_json::from_value::<Error>(v["hiqlite_error"].clone())
        .unwrap_or_else(|_| Error::Server(v["error"].as_str().unwrap_or(data).to_owned()))
}

/// A remote change stream (see the module documentation).
pub(crate) struct RemoteChanges {
    remote: std::sync::Arc<Remote>,
    query: String,
    cursor: Option<ChangeCursor>,
    node: String,
    sse: Option<Sse>,
}

impl RemoteChanges {
    /// The cursor after the last change delivered (or the start).
    pub(crate) fn cursor(&self) -> Option<ChangeCursor> {
        self.cursor
    }

    /// Where the stream stands, for diagnostics.
    pub(crate) fn describe(&self) -> String {
        format!("remote from {}: cursor {:?}, connected {}", self.node, self.cursor, self.sse.is_some())
    }

    pub(crate) async fn next(&mut self) -> Result<Change> {
        let mut attempts = 0u32;
        loop {
            let Some(sse) = self.sse.as_mut() else {
                // Reconnect where the stream stopped (a node that answers, maybe another one).
                match self.remote.open_sse(&self.query, self.cursor.map(|c| c.to_string())).await {
                    Ok((node, sse)) => {
                        self.node = node;
                        self.sse = Some(sse);
                    }
                    Err(e @ (Error::Unreachable(_) | Error::ShutDown | Error::NoLeader(_))) => {
                        attempts += 1;
                        if attempts > 20 {
                            return Err(e);
                        }
                        tokio::time::sleep(Duration::from_millis(100 * u64::from(attempts.min(10)))).await;
                    }
                    Err(e) => return Err(e),
                }
                continue;
            };
            match sse.next().await {
                Ok(ev) if ev.event == "change" => {
                    let c: Change = serde_json::from_str(&ev.data)
                        .map_err(|e| Error::Decode(format!("change event: {e}")))?;
                    self.cursor = Some(c.cursor());
                    return Ok(c);
                }
                Ok(ev) if ev.event == "error" => return Err(error_of(&ev.data)),
                Ok(_) => {}
                Err(Error::Unreachable(_)) => {
                    self.remote.mark_down(&self.node);
                    self.sse = None;
                    // A stream that started "from now" resumes where it got to: nothing
                    // delivered yet means from now again.
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// A remote live query.
pub(crate) struct RemoteWatch {
    sse: Sse,
}

impl RemoteWatch {
    pub(crate) async fn next(&mut self) -> Result<Rows> {
        loop {
            let ev = self.sse.next().await?;
            match ev.event.as_str() {
                "rows" => {
                    return serde_json::from_str(&ev.data)
                        .map_err(|e| Error::Decode(format!("rows event: {e}")))
                }
                "error" => return Err(error_of(&ev.data)),
                _ => {}
            }
        }
    }
}
