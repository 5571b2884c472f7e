//! What a node reports about itself and its cluster ([`Status`], [`NodeInfo`]): the same types
//! for an embedded node and for a remote client that parsed a server's answer.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::command::Member;

/// A snapshot of a node's state, for humans and health checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// This node's id.
    pub id: u64,
    /// `Leader`, `Follower`, `Candidate`, `Learner` or `Shutdown`.
    pub state: String,
    /// The current leader, if known.
    pub leader: Option<u64>,
    /// Current term.
    pub term: u64,
    /// Last index in the log.
    pub last_log_index: Option<u64>,
    /// Last index applied to SQLite.
    pub applied_index: Option<u64>,
    /// Index of the newest snapshot.
    pub snapshot_index: Option<u64>,
    /// Snapshots received from a leader and installed since start.
    pub snapshots_installed: u64,
    /// Snapshots built locally since start.
    pub snapshots_built: u64,
    /// How long the last local snapshot build took, in milliseconds.
    #[serde(default)]
    pub snapshot_build_ms: u64,
    /// Voters and learners: id -> (raft address, api address).
    pub members: BTreeMap<u64, Member>,
    /// Ids of the voters.
    pub voters: Vec<u64>,
    /// This node's part: `voter`, `learner` (a read replica, or a node still catching up before
    /// it is promoted), or empty while it is no member yet.
    #[serde(default)]
    pub role: String,
    /// Raft address this node listens on.
    pub raft_addr: String,
    /// API address this node listens on.
    pub api_addr: String,
    /// How the state machine was opened: `clean`, `healed`, or `new`.
    pub startup: String,
    /// The applied index recorded in the database when this node started.
    pub applied_index_at_start: Option<u64>,
    /// Log entries applied to SQLite since this node started.
    pub entries_applied_since_start: u64,
    /// False when Raft stopped on a fatal error (e.g. its storage failed); see `error`.
    pub healthy: bool,
    /// Why the node is unhealthy.
    pub error: Option<String>,
    /// Scheduled backups, when configured. (Never skipped when absent: nodes exchange this
    /// type as postcard, which is not self-describing, so every field is always written.)
    #[serde(default)]
    pub backup: Option<BackupStatus>,
}

/// How scheduled backups are doing on this node (`Status::backup`, `/metrics`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BackupStatus {
    /// Where backups go.
    pub destination: String,
    /// When the last backup was stored (Unix milliseconds).
    pub last_success_ms: Option<u64>,
    /// The log index the last stored backup holds.
    pub last_index: Option<u64>,
    /// Its object name.
    pub last_object: Option<String>,
    /// Its stored size in bytes.
    pub last_bytes: u64,
    /// Backups this node stored since it started.
    pub stored: u64,
    /// Attempts that failed since it started (each is retried with backoff).
    pub failed: u64,
    /// Failures since the last success.
    pub consecutive_failures: u64,
    /// The last failure's message.
    pub last_error: Option<String>,
    /// Old backups deleted by the retention policy since it started.
    pub pruned: u64,
}

/// A member of the cluster as seen from one node (`GET /nodes`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Node id.
    pub id: u64,
    /// Base URL of its client API, e.g. `http://10.0.0.1:4001`.
    pub api_addr: String,
    /// Address of its peer (Raft) listener.
    pub raft_addr: String,
    /// True for voters, false for learners.
    pub voter: bool,
    /// True if it is the leader, as the answering node knows it.
    pub leader: bool,
    /// Whether the answering node could reach it.
    pub reachable: bool,
    /// Round trip of the reachability probe.
    pub rtt: Option<Duration>,
    /// Why it is unreachable.
    pub error: Option<String>,
}

#[cfg(all(test, feature = "server"))]
mod tests {
    use super::*;

    /// Nodes exchange `Status` as postcard (the console's cluster view): every field must be
    /// written whether set or not, or the reader runs off the end of the buffer.
    #[test]
    fn status_round_trips_through_postcard_with_and_without_backups() {
        let mut st: Status = serde_json::from_value(serde_json::json!({
            "id": 2, "state": "Follower", "leader": 1, "term": 3, "last_log_index": 9,
            "applied_index": 9, "snapshot_index": null, "snapshots_installed": 0,
            "snapshots_built": 0, "members": {}, "voters": [1, 2], "raft_addr": "a",
            "api_addr": "b", "startup": "new", "applied_index_at_start": null,
            "entries_applied_since_start": 9, "healthy": true, "error": null
        }))
        .expect("status JSON");
        for backup in [None, Some(BackupStatus { stored: 3, ..Default::default() })] {
            st.backup = backup;
            let bytes = postcard::to_allocvec(&st).expect("encode");
            assert_eq!(postcard::from_bytes::<Status>(&bytes).expect("decode"), st);
        }
    }
}
