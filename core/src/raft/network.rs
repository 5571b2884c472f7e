//! Peer HTTP client: Raft RPCs and forwarded requests over pooled keep-alive connections, with
//! postcard bodies. Every request carries the cluster secret.

use std::time::Duration;

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{Member, TypeConfig};

/// Header carrying the cluster secret on peer routes.
pub const SECRET_HEADER: &str = "x-hiqlite-secret";
/// Content type of peer bodies.
pub const POSTCARD: &str = "application/x-postcard";

/// Why a peer call failed, from the caller's point of view.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The connection could not be made: the request was not delivered.
    #[error("cannot connect to {0}")]
    Unreachable(String),
    /// Delivered (or maybe delivered) but no usable answer came back.
    #[error("peer {0} failed: {1}")]
    Network(String, String),
    /// The peer answered with an HTTP error status.
    #[error("peer {0} answered {1}: {2}")]
    Status(String, u16, String),
}

/// HTTP client for peer routes; clones share one connection pool.
#[derive(Clone)]
pub struct PeerClient {
    http: reqwest::Client,
    secret: String,
    scheme: &'static str,
}

impl PeerClient {
    /// A client presenting `secret` to peers over plain HTTP.
    pub fn new(secret: &str) -> crate::Result<Self> {
        Self::with_tls(secret, None, false, None)
    }

    /// A client presenting `secret` to peers; with `ca_pem`, over HTTPS trusting those CAs. With
    /// `source`, connections leave from that local address (the one the node listens on), so
    /// that on a host with several addresses peers see the node's own.
    pub fn with_tls(
        secret: &str,
        ca_pem: Option<&[u8]>,
        insecure: bool,
        source: Option<std::net::IpAddr>,
    ) -> crate::Result<Self> {
        crate::tls::install_crypto_provider();
        let cfg_err = |e: reqwest::Error| crate::Error::Config(format!("cannot build HTTP client: {e}"));
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
    pub fn scheme(&self) -> &'static str {
        self.scheme
    }

    /// POST a postcard body to `http://addr/path` and decode a postcard answer.
    pub async fn post<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        addr: &str,
        path: &str,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp, PeerError> {
        let body = postcard::to_stdvec(req).map_err(|e| PeerError::Network(addr.into(), e.to_string()))?;
        let resp = self
            .http
            .post(format!("{}://{addr}{path}", self.scheme))
            .header(SECRET_HEADER, &self.secret)
            .header(reqwest::header::CONTENT_TYPE, POSTCARD)
            .timeout(timeout)
            .body(body)
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() {
                    PeerError::Unreachable(addr.into())
                } else {
                    PeerError::Network(addr.into(), e.to_string())
                }
            })?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| PeerError::Network(addr.into(), e.to_string()))?;
        if !status.is_success() {
            return Err(PeerError::Status(
                addr.into(),
                status.as_u16(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
        postcard::from_bytes(&bytes).map_err(|e| PeerError::Network(addr.into(), format!("bad answer: {e}")))
    }
}

/// Creates one connection object per target; all share the pooled client.
pub struct Network {
    pub(crate) client: PeerClient,
}

/// Raft RPCs to one peer.
pub struct Connection {
    client: PeerClient,
    target: u64,
    addr: String,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: u64, node: &Member) -> Self::Network {
        Connection { client: self.client.clone(), target, addr: node.raft_addr.clone() }
    }
}

impl Connection {
    async fn rpc<Req, Resp, E>(
        &self,
        path: &str,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<u64, Member, RaftError<u64, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let r: Result<Result<Resp, RaftError<u64, E>>, PeerError> =
            self.client.post(&self.addr, path, req, option.hard_ttl()).await;
        match r {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => Err(RPCError::RemoteError(RemoteError::new(self.target, e))),
            Err(e @ PeerError::Unreachable(_)) => Err(RPCError::Unreachable(Unreachable::new(&e))),
            Err(e) => Err(RPCError::Network(NetworkError::new(&e))),
        }
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, Member, RaftError<u64>>> {
        self.rpc("/raft/append", &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<u64>, RPCError<u64, Member, RaftError<u64, InstallSnapshotError>>>
    {
        self.rpc("/raft/snapshot", &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, Member, RaftError<u64>>> {
        self.rpc("/raft/vote", &rpc, &option).await
    }
}
