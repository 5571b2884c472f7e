//! The plain status objects `db.status()` and `db.nodes()` return: `NodeStatus`,
//! `ClusterMember` and `NodeInfo`.

use napi_derive::napi;

/// A cluster member's addresses.
#[napi(object, object_from_js = false)]
pub struct ClusterMember {
    /// Node id.
    pub id: f64,
    /// `host:port` of its Raft listener.
    pub raft_addr: String,
    /// `host:port` of its HTTP API.
    pub api_addr: String,
}

/// A node's view of itself and of the cluster (`db.status()`).
#[napi(object, object_from_js = false)]
pub struct NodeStatus {
    /// This node's id.
    pub id: f64,
    /// `Leader`, `Follower`, `Candidate`, `Learner` or `Shutdown`.
    pub state: String,
    /// The current leader's id, if known.
    pub leader: Option<f64>,
    /// Current Raft term.
    pub term: f64,
    /// Last index in the log.
    pub last_log_index: Option<f64>,
    /// Last index applied to SQLite.
    pub applied_index: Option<f64>,
    /// Index of the newest snapshot.
    pub snapshot_index: Option<f64>,
    /// Voters and learners.
    pub members: Vec<ClusterMember>,
    /// Ids of the voters.
    pub voters: Vec<f64>,
    /// This node's part: `voter`, `learner`, or empty while it is no member yet.
    pub role: String,
    /// Raft address of this node.
    pub raft_addr: String,
    /// API address of this node.
    pub api_addr: String,
    /// How the database was opened: `new`, `clean` or `healed`.
    pub startup: String,
    /// False when Raft stopped on a fatal error; see `error`.
    pub healthy: bool,
    /// Why the node is unhealthy.
    pub error: Option<String>,
}

impl From<hiqlite::Status> for NodeStatus {
    fn from(s: hiqlite::Status) -> Self {
        let n = |v: u64| v as f64;
        NodeStatus {
            id: n(s.id),
            state: s.state,
            leader: s.leader.map(n),
            term: n(s.term),
            last_log_index: s.last_log_index.map(n),
            applied_index: s.applied_index.map(n),
            snapshot_index: s.snapshot_index.map(n),
            members: s
                .members
                .into_iter()
                .map(|(id, m)| ClusterMember { id: n(id), raft_addr: m.raft_addr, api_addr: m.api_addr })
                .collect(),
            voters: s.voters.into_iter().map(n).collect(),
            role: s.role,
            raft_addr: s.raft_addr,
            api_addr: s.api_addr,
            startup: s.startup,
            healthy: s.healthy,
            error: s.error,
        }
    }
}

/// A member of the cluster as the answering node sees it (`db.nodes()`).
#[napi(object, object_from_js = false)]
pub struct NodeInfo {
    /// Node id.
    pub id: f64,
    /// Its client API address.
    pub api_addr: String,
    /// Its Raft address.
    pub raft_addr: String,
    /// True for voters, false for learners.
    pub voter: bool,
    /// True if it is the leader.
    pub leader: bool,
    /// Whether the answering node could reach it.
    pub reachable: bool,
    /// Round trip of the reachability probe, in milliseconds.
    pub rtt_ms: Option<f64>,
    /// Why it is unreachable.
    pub error: Option<String>,
}

impl From<hiqlite::NodeInfo> for NodeInfo {
    fn from(n: hiqlite::NodeInfo) -> Self {
        NodeInfo {
            id: n.id as f64,
            api_addr: n.api_addr,
            raft_addr: n.raft_addr,
            voter: n.voter,
            leader: n.leader,
            reachable: n.reachable,
            rtt_ms: n.rtt.map(|d| d.as_secs_f64() * 1000.0),
            error: n.error,
        }
    }
}
