//! The peer protocol: every route between nodes is declared here once — its path, its request
//! type and its answer type — together with the types only peers exchange. The axum server
//! (`http/peer.rs`) and the peer client ([`client::PeerClient`]) both use these declarations,
//! so a path is written in this file and nowhere else. Log entries (and heartbeats) travel on
//! append streams instead ([`stream`]).

pub(crate) mod client;
pub(crate) mod stream;

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest, VoteResponse};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::command::{Command, Member, Response};
use crate::error::Error;
use crate::raft::{LogId, TypeConfig};
use crate::value::{ExecResult, Params, Rows, Statement};

/// Header carrying the cluster secret on peer routes.
pub(crate) const SECRET_HEADER: &str = "x-hiqlite-secret";
/// Content type of peer bodies (postcard).
pub(crate) const POSTCARD: &str = "application/x-postcard";

/// One peer route: `POST PATH` with a postcard `Req` body, answered with a postcard `Resp`.
pub(crate) trait Route {
    /// The URL path.
    const PATH: &'static str;
    /// What the caller sends.
    type Req: Serialize + DeserializeOwned + Send + Sync + 'static;
    /// What the node answers.
    type Resp: Serialize + DeserializeOwned + Send + 'static;
}

macro_rules! routes {
    ($($(#[$doc:meta])* $name:ident = $path:literal : $req:ty => $resp:ty;)*) => {
        $(
            $(#[$doc])*
            pub(crate) struct $name;
            impl Route for $name {
                const PATH: &'static str = $path;
                type Req = $req;
                type Resp = $resp;
            }
        )*
        /// Every peer path (for tests that check each one is guarded).
        pub(crate) const PATHS: &[&str] = &[$($path),*];
    };
}

routes! {
    /// Raft: ask for a vote.
    Vote = "/raft/vote": VoteRequest<u64> => Result<VoteResponse<u64>, RaftError<u64>>;
    /// Raft: one chunk of a snapshot.
    Snapshot = "/raft/snapshot": InstallSnapshotRequest<TypeConfig>
        => Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>>;
    /// A write forwarded by a follower to the leader.
    Write = "/cluster/write": Command => Result<Response, Error>;
    /// A `Leader` read forwarded by a follower to the leader.
    Query = "/cluster/query": QueryRequest => Result<Rows, Error>;
    /// The leader's read index (leadership confirmed by a quorum), for linearizable reads.
    ReadIndex = "/cluster/read_index": () => Result<Option<LogId>, Error>;
    /// Add a node (learner, then voter); forwarded to the leader.
    Join = "/cluster/join": JoinRequest => Result<(), Error>;
    /// Add a node as a learner that is never promoted (a read replica); forwarded to the
    /// leader. A separate call, so that the body of `Join` stays what earlier versions send.
    JoinLearner = "/cluster/join_learner": JoinRequest => Result<(), Error>;
    /// Remove a node; forwarded to the leader.
    Remove = "/cluster/remove": u64 => Result<(), Error>;
    /// Whether a node belongs to an initialized cluster, and its leader.
    Info = "/cluster/info": () => ClusterInfo;
    /// A node's own status (the web console's cluster page shows every member's).
    NodeStatus = "/cluster/status": () => crate::status::Status;
    /// Campaign for leadership now (leadership transfer).
    Elect = "/cluster/elect": () => Result<(), Error>;
    /// Begin an interactive transaction on the leader.
    TxBegin = "/cluster/tx/begin": () => Result<u64, Error>;
    /// Run a statement in an interactive transaction.
    TxExec = "/cluster/tx/exec": (u64, Statement) => Result<ExecResult, Error>;
    /// Commit an interactive transaction.
    TxCommit = "/cluster/tx/commit": u64 => Result<(), Error>;
    /// Roll an interactive transaction back.
    TxRollback = "/cluster/tx/rollback": u64 => Result<(), Error>;
}

/// What `/cluster/info` says about a node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ClusterInfo {
    /// It belongs to an initialized cluster.
    pub initialized: bool,
    /// The leader it knows.
    pub leader: Option<u64>,
}

/// A node asking to join.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct JoinRequest {
    /// Its id.
    pub id: u64,
    /// Its addresses.
    pub member: Member,
}

/// A read forwarded to the leader.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct QueryRequest {
    /// One statement.
    pub sql: String,
    /// Its parameters.
    pub params: Params,
}
