//! The peer client: calls the routes of [`super`] on other nodes over pooled keep-alive
//! connections, with postcard bodies and the cluster secret, and reports failures as
//! [`Failure`]s for the one routing rule to classify.

use std::time::Duration;

use super::{Route, POSTCARD, SECRET_HEADER};
use crate::error::Error;
use crate::routing::{transport_failure, Failure};

/// HTTP client for peer routes; clones share one connection pool.
#[derive(Clone)]
pub(crate) struct PeerClient {
    http: reqwest::Client,
    /// HTTP/1.1 only: upgrades (`stream.rs`) do not exist in HTTP/2, which TLS would negotiate.
    http1: reqwest::Client,
    secret: String,
    scheme: &'static str,
}

impl std::fmt::Debug for PeerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerClient").field("scheme", &self.scheme).finish_non_exhaustive()
    }
}

impl PeerClient {
    /// A client presenting `secret` to peers; with `ca_pem`, over HTTPS trusting those CAs. With
    /// `source`, connections leave from that local address (the one the node listens on), so
    /// that on a host with several addresses peers see the node's own.
    pub(crate) fn new(
        secret: &str,
        ca_pem: Option<&[u8]>,
        insecure: bool,
        source: Option<std::net::IpAddr>,
    ) -> crate::Result<Self> {
        crate::tls::install_crypto_provider();
        let cfg_err = |e: reqwest::Error| Error::Config(format!("cannot build HTTP client: {e}"));
        let build = |http1: bool| {
            let mut b = reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .tcp_nodelay(true)
                .local_address(source)
                .connect_timeout(Duration::from_secs(2));
            if http1 {
                b = b.http1_only();
            }
            if let Some(pem) = ca_pem {
                let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(cfg_err)?;
                b = b.tls_certs_only(certs).tls_danger_accept_invalid_certs(insecure);
            }
            b.build().map_err(cfg_err)
        };
        let scheme = if ca_pem.is_some() { "https" } else { "http" };
        Ok(PeerClient { http: build(false)?, http1: build(true)?, secret: secret.to_owned(), scheme })
    }

    /// `http` or `https`.
    pub(crate) fn scheme(&self) -> &'static str {
        self.scheme
    }

    /// Call route `R` on the node whose peer listener is `addr`.
    pub(crate) async fn call<R: Route>(
        &self,
        addr: &str,
        req: &R::Req,
        timeout: Duration,
    ) -> Result<R::Resp, Failure> {
        let body = super::stream::encode(req)
            .map_err(|e| Failure::Answer(Error::InvalidRequest(format!("cannot encode the request: {e}"))))?;
        let resp = self
            .http
            .post(format!("{}://{addr}{}", self.scheme, R::PATH))
            .header(SECRET_HEADER, &self.secret)
            .header(reqwest::header::CONTENT_TYPE, POSTCARD)
            .timeout(timeout)
            .body(body)
            .send()
            .await
            .map_err(|e| transport_failure(addr, &e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| transport_failure(addr, &e))?;
        if !status.is_success() {
            let msg = format!("{addr}: {}", String::from_utf8_lossy(&bytes).trim());
            return Err(Failure::Status(status.as_u16(), status_error(status.as_u16(), msg)));
        }
        postcard::from_bytes(&bytes).map_err(|e| Failure::Decode(format!("answer of {addr}: {e}")))
    }
}

impl PeerClient {
    /// Switch a new connection to the node at `addr` over to `protocol` (an HTTP/1.1 upgrade at
    /// `path`, with the cluster secret), within `timeout`.
    pub(crate) async fn upgrade(
        &self,
        addr: &str,
        path: &str,
        protocol: &'static str,
        timeout: Duration,
    ) -> Result<reqwest::Upgraded, Failure> {
        use reqwest::header::{CONNECTION, UPGRADE};
        let open = async {
            let resp = self
                .http1
                .get(format!("{}://{addr}{path}", self.scheme))
                .header(SECRET_HEADER, &self.secret)
                .header(CONNECTION, "upgrade")
                .header(UPGRADE, protocol)
                .send()
                .await
                .map_err(|e| transport_failure(addr, &e))?;
            let status = resp.status();
            if status != reqwest::StatusCode::SWITCHING_PROTOCOLS {
                let body = resp.bytes().await.unwrap_or_default();
                let msg = format!("{addr}: {}", String::from_utf8_lossy(&body).trim());
                return Err(Failure::Status(status.as_u16(), status_error(status.as_u16(), msg)));
            }
            resp.upgrade().await.map_err(|e| transport_failure(addr, &e))
        };
        match tokio::time::timeout(timeout, open).await {
            Ok(r) => r,
            Err(_) => {
                Err(Failure::ConnectTimeout(format!("{addr}: no upgrade to {protocol} within {timeout:?}")))
            }
        }
    }
}

/// The error a peer route's HTTP error status stands for (its typed errors travel in 200
/// answers; a status comes from the layers around the handler).
fn status_error(status: u16, msg: String) -> Error {
    match status {
        401 | 403 => Error::Unauthorized(msg),
        503 => Error::NoLeader(msg),
        400..=499 => Error::InvalidRequest(msg),
        _ => Error::Raft(format!("peer failed the request (HTTP {status}): {msg}")),
    }
}
