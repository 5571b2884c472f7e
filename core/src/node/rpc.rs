//! What a node answers to its peers: Raft's RPCs, and the requests followers forward to the
//! leader. The HTTP layer decodes a peer route's request and hands it to one of these.

use std::sync::atomic::Ordering;

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};

use super::{now_us, Node};
use crate::command::{Command, Response};
use crate::error::{Error, Result};
use crate::peer::ClusterInfo;
use crate::raft::TypeConfig;

impl Node {
    /// Raft: entries (or a heartbeat) from the leader.
    pub(crate) async fn append_entries(
        &self,
        req: AppendEntriesRequest<TypeConfig>,
    ) -> std::result::Result<AppendEntriesResponse<u64>, RaftError<u64>> {
        use crate::breakdown::{mark, Stage};
        let traced = !req.entries.is_empty();
        if traced {
            mark(Stage::ReplicaRecv, self.id());
        }
        let r = self.inner.raft.append_entries(req).await;
        if traced {
            mark(Stage::ReplicaReply, self.id());
        }
        if matches!(&r, Ok(resp) if resp.is_success()) {
            self.inner.last_leader_contact_us.store(now_us(), Ordering::Relaxed);
        }
        r
    }

    /// Raft: a vote request.
    pub(crate) async fn vote(
        &self,
        req: VoteRequest<u64>,
    ) -> std::result::Result<VoteResponse<u64>, RaftError<u64>> {
        self.inner.raft.vote(req).await
    }

    /// Raft: a snapshot chunk.
    pub(crate) async fn install_snapshot(
        &self,
        req: InstallSnapshotRequest<TypeConfig>,
    ) -> std::result::Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>> {
        self.inner.raft.install_snapshot(req).await
    }

    /// A write forwarded by a follower: proposed only while this node leads.
    pub(crate) async fn write_forwarded(&self, cmd: Command) -> Result<Response> {
        if !self.is_leader() {
            return Err(Error::NotLeader { leader: self.leader() });
        }
        self.write_as_leader(cmd).await
    }

    /// Whether this node belongs to an initialized cluster, and the leader it knows.
    pub(crate) async fn cluster_info(&self) -> ClusterInfo {
        let initialized = self.inner.raft.is_initialized().await.unwrap_or(false);
        ClusterInfo { initialized, leader: self.leader() }
    }

    /// Campaign for leadership now (the target side of a leadership transfer).
    pub(crate) async fn elect(&self) -> Result<()> {
        self.inner.raft.trigger().elect().await.map_err(Error::raft)
    }
}
