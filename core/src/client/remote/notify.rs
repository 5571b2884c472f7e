//! listen/notify over HTTP: `POST /notify/{channel}` and a server-sent event stream from
//! `GET /listen/{channel}` (resumed with `Last-Event-ID`), parsed here. With `hiqlite_kv` the
//! server sends payloads as base64 and lag markers as JSON.

use base64::Engine as _;
use percent_encoding::utf8_percent_encode;
use reqwest::Method;

use super::coord::SEGMENT;
use super::transport::Target;
use super::Remote;
use crate::client::{ListenEvent, Notification};
use crate::error::{Error, Result};

impl Remote {
    pub(crate) async fn notify(&self, channel: &str, payload: &[u8]) -> Result<i64> {
        let path = format!("/notify/{}", utf8_percent_encode(channel, SEGMENT));
        let v = self.coord_call(Method::POST, &path, String::new(), Some(payload.to_vec()), false).await?;
        v["id"].as_i64().ok_or_else(|| Error::Decode(format!("notify answer without an id: {v}")))
    }

    pub(crate) async fn listen(&self, channel: &str, after: Option<i64>) -> Result<SseListener> {
        let url = format!(
            "{}/listen/{}?hiqlite_kv",
            self.pick(Target::Nearest),
            utf8_percent_encode(channel, SEGMENT)
        );
        let mut rb = self.http.get(&url);
        if let Some(a) = &self.auth {
            rb = rb.header(reqwest::header::AUTHORIZATION, a);
        }
        if let Some(a) = after {
            rb = rb.header("last-event-id", a.to_string());
        }
        let resp = rb.send().await.map_err(|e| Error::Unreachable(format!("{url}: {e}")))?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.bytes().await.unwrap_or_default();
            return Err(super::transport::error_from_status(status, &body));
        }
        Ok(SseListener { channel: channel.to_owned(), resp, buf: Vec::new() })
    }
}

/// A listener reading a server-sent event stream.
pub(crate) struct SseListener {
    channel: String,
    resp: reqwest::Response,
    buf: Vec<u8>,
}

impl SseListener {
    /// The next event of the stream.
    pub(crate) async fn next(&mut self) -> Result<ListenEvent> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buf.drain(..end + 2).collect();
                if let Some(e) = self.parse(&block)? {
                    return Ok(e);
                }
                continue;
            }
            match self.resp.chunk().await {
                Ok(Some(c)) => self.buf.extend_from_slice(&c),
                Ok(None) => return Err(Error::Unreachable("the listen stream ended".into())),
                Err(e) => return Err(Error::Unreachable(format!("the listen stream broke: {e}"))),
            }
        }
    }

    fn parse(&self, block: &[u8]) -> Result<Option<ListenEvent>> {
        let text = std::str::from_utf8(block).map_err(|e| Error::Decode(format!("event stream: {e}")))?;
        let (mut event, mut id, mut data) = ("message", None, String::new());
        for line in text.lines() {
            if let Some(v) = line.strip_prefix("event:") {
                event = v.trim_start();
            } else if let Some(v) = line.strip_prefix("id:") {
                id = v.trim_start().parse::<i64>().ok();
            } else if let Some(v) = line.strip_prefix("data:") {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(v.strip_prefix(' ').unwrap_or(v));
            }
        }
        match event {
            "note" => {
                let id = id.ok_or_else(|| Error::Decode("a notification without an id".into()))?;
                let payload = base64::engine::general_purpose::STANDARD
                    .decode(data.trim())
                    .map_err(|e| Error::Decode(format!("notification payload: {e}")))?;
                Ok(Some(ListenEvent::Notification(Notification {
                    id,
                    channel: self.channel.clone(),
                    payload,
                })))
            }
            "lagged" => {
                let v: serde_json::Value =
                    serde_json::from_str(&data).map_err(|e| Error::Decode(format!("lag marker: {e}")))?;
                Ok(Some(ListenEvent::Lagged {
                    after: v["after"].as_i64().unwrap_or(0),
                    lost: v["lost"].as_bool().unwrap_or(false),
                }))
            }
            // Comments and keep-alives.
            _ => Ok(None),
        }
    }
}
