//! openraft's network over the peer protocol: appends travel on a stream per follower
//! ([`crate::peer::stream`]), votes and snapshots on the `Vote` and `Snapshot` routes of
//! [`crate::peer`], and peer failures become openraft's `RPCError`s.

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};

use super::{Member, TypeConfig};
use crate::peer::client::PeerClient;
use crate::peer::stream::AppendStream;
use crate::peer::{self, Route};
use crate::routing::Failure;

/// Creates one connection object per target; all share the pooled client.
pub(crate) struct Network {
    pub(crate) client: PeerClient,
    /// This node's id, for [`crate::breakdown`] events.
    pub(crate) me: u64,
}

/// Raft RPCs to one peer.
pub(crate) struct Connection {
    client: PeerClient,
    target: u64,
    addr: String,
    me: u64,
    /// The open append stream, if any.
    stream: Option<AppendStream>,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: u64, node: &Member) -> Self::Network {
        Connection {
            client: self.client.clone(),
            target,
            addr: node.raft_addr.clone(),
            me: self.me,
            stream: None,
        }
    }
}

#[derive(Debug)]
struct Why(String);

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Why {}

impl Connection {
    async fn rpc<R, T, E>(
        &self,
        req: &R::Req,
        option: &RPCOption,
    ) -> Result<T, RPCError<u64, Member, RaftError<u64, E>>>
    where
        R: Route<Resp = Result<T, RaftError<u64, E>>>,
        E: std::error::Error,
    {
        self.answer(self.client.call::<R>(&self.addr, req, option.hard_ttl()).await)
    }

    fn answer<T, E>(
        &self,
        r: Result<Result<T, RaftError<u64, E>>, Failure>,
    ) -> Result<T, RPCError<u64, Member, RaftError<u64, E>>>
    where
        E: std::error::Error,
    {
        match r {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => Err(RPCError::RemoteError(RemoteError::new(self.target, e))),
            // Never sent: openraft backs off from an unreachable node.
            Err(Failure::ConnectFailed(m) | Failure::ConnectTimeout(m)) => {
                Err(RPCError::Unreachable(Unreachable::new(&Why(m))))
            }
            Err(f) => Err(RPCError::Network(NetworkError::new(&Why(f.to_string())))),
        }
    }

    /// An append on the stream (opened first when there is none), within `ttl`; any failure
    /// closes the stream.
    async fn append_on_stream(
        &mut self,
        req: &AppendEntriesRequest<TypeConfig>,
        ttl: std::time::Duration,
    ) -> Result<crate::peer::stream::Resp, Failure> {
        let call = async {
            if self.stream.is_none() {
                self.stream = Some(AppendStream::open(&self.client, &self.addr, ttl).await?);
            }
            match self.stream.as_mut() {
                Some(s) => s.call(&self.addr, req).await,
                None => Err(Failure::ConnectionLost(format!("{}: no append stream", self.addr))),
            }
        };
        let r = match tokio::time::timeout(ttl, call).await {
            Ok(r) => r,
            Err(_) => Err(Failure::TimedOut(format!("{}: no answer to an append within {ttl:?}", self.addr))),
        };
        if r.is_err() {
            self.stream = None;
        }
        r
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, Member, RaftError<u64>>> {
        use crate::breakdown::{mark, Stage};
        let traced = !rpc.entries.is_empty();
        if traced {
            mark(Stage::ReplicaSend, self.me);
        }
        let r = self.append_on_stream(&rpc, option.hard_ttl()).await;
        let r = self.answer(r);
        if traced {
            mark(Stage::ReplicaDone, self.me);
        }
        r
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<u64>, RPCError<u64, Member, RaftError<u64, InstallSnapshotError>>>
    {
        self.rpc::<peer::Snapshot, _, _>(&rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, Member, RaftError<u64>>> {
        self.rpc::<peer::Vote, _, _>(&rpc, &option).await
    }
}
