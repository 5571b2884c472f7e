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
        let mut b = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .local_address(source)
            .connect_timeout(Duration::from_secs(2));
        let scheme = match ca_pem {
            None => "http",
            Some(pem) => {
                let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(cfg_err)?;
                b = b.tls_certs_only(certs).tls_danger_accept_invalid_certs(insecure);
                "https"
            }
        };
        let http = b.build().map_err(cfg_err)?;
        Ok(PeerClient { http, secret: secret.to_owned(), scheme })
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
        // Sized first: growing the body of a big append step by step cost more than the extra
        // pass over it.
        let body = postcard::experimental::serialized_size(req)
            .and_then(|n| postcard::to_extend(req, Vec::with_capacity(n)))
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
