//! Cluster membership: forming a new cluster or joining one at start, adding and removing
//! members (on the leader, reached through leader routing), and handing leadership over.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, RaftError};

use super::leader::Here;
use super::Node;
use crate::command::Member;
use crate::error::{Error, Result};
use crate::peer::{self, JoinRequest};
use crate::routing::Kind;

/// A membership change waits for a learner to catch up: peer calls get this long.
const MEMBERSHIP_CALL: Duration = Duration::from_secs(60);

fn leader_error(e: RaftError<u64, ClientWriteError<u64, Member>>) -> Error {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => Error::NotLeader { leader: f.leader_id },
        e => Error::raft(e),
    }
}

impl Node {
    fn me(&self) -> Member {
        Member { raft_addr: self.inner.raft_addr.clone(), api_addr: self.inner.api_addr.clone() }
    }

    /// Form the cluster in the background once the listeners are served: join through
    /// `config.join`, or (lowest id of `config.peers`, or a lone node) bootstrap it.
    pub(crate) fn spawn_formation(&self) {
        let node = self.clone();
        tokio::spawn(async move { node.form_cluster().await });
    }

    async fn form_cluster(&self) {
        let cfg = &self.inner.config;
        let mut rx = self.inner.shutdown_tx.subscribe();
        if matches!(self.inner.raft.is_initialized().await, Ok(true)) {
            return;
        }
        if !cfg.join.is_empty() {
            let req = JoinRequest { id: self.inner.id, member: self.me() };
            let mut delay = Duration::from_millis(100);
            loop {
                for addr in &cfg.join {
                    let joined = if cfg.learner {
                        self.inner.peers.call::<peer::JoinLearner>(addr, &req, Duration::from_secs(30)).await
                    } else {
                        self.inner.peers.call::<peer::Join>(addr, &req, Duration::from_secs(30)).await
                    };
                    match joined {
                        Ok(Ok(())) => {
                            tracing::info!(node = self.inner.id, via = %addr, "joined the cluster");
                            return;
                        }
                        Ok(Err(e)) => tracing::info!("join via {addr} not yet possible: {e}"),
                        Err(e) => tracing::debug!("join via {addr}: {e}"),
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = rx.wait_for(|v| *v) => return,
                }
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
        let members: BTreeMap<u64, Member> = if cfg.peers.is_empty() {
            BTreeMap::from([(self.inner.id, self.me())])
        } else {
            cfg.peers
                .iter()
                .map(|p| (p.id, Member { raft_addr: p.raft_addr.clone(), api_addr: p.api_addr.clone() }))
                .collect()
        };
        // Exactly one member bootstraps: the lowest id. It refuses if any peer already belongs to
        // an initialized cluster (e.g. this node lost its data and came back empty).
        if members.keys().next() != Some(&self.inner.id) {
            return;
        }
        for (id, m) in &members {
            if *id == self.inner.id {
                continue;
            }
            let r = self.inner.peers.call::<peer::Info>(&m.raft_addr, &(), Duration::from_millis(500)).await;
            if let Ok(info) = r {
                if info.initialized {
                    tracing::info!(
                        node = self.inner.id,
                        peer = id,
                        "cluster already initialized; not bootstrapping"
                    );
                    return;
                }
            }
        }
        let bootstrapped = match self.inner.raft.initialize(members).await {
            Ok(()) => {
                tracing::info!(node = self.inner.id, "bootstrapped a new cluster");
                true
            }
            Err(e) => {
                tracing::info!(node = self.inner.id, "not bootstrapping: {e}");
                false
            }
        };
        if cfg.restore_from.is_some() {
            match self.seal_restored().await {
                Ok(()) => tracing::info!(
                    node = self.inner.id,
                    "restored data snapshotted; ready for members to join"
                ),
                Err(e) => tracing::error!(node = self.inner.id, "could not snapshot the restored data: {e}"),
            }
        }
        self.inner.restoring.store(false, Ordering::Release);
        if bootstrapped {
            // The new cluster's foreign-key setting (kept if restored data brought one).
            let cmd = crate::command::Command::Execute {
                stmts: vec![crate::value::Statement::from(super::propose::initial_fk_sql(cfg.foreign_keys))],
                mode: crate::command::ExecMode::Transaction,
                ts_ms: 0,
                seed: 0,
            };
            let r = match self.wait_for_leader(self.timeout()).await {
                Ok(_) => self.write(cmd).await.map(|_| ()),
                Err(e) => Err(e),
            };
            if let Err(e) = r {
                tracing::info!(
                    node = self.inner.id,
                    "initial foreign-key setting left to the first write: {e}"
                );
            }
        }
    }

    /// The restored data is not in the log: snapshot it and purge the log before anyone joins,
    /// so that every other node receives it as a snapshot.
    async fn seal_restored(&self) -> Result<()> {
        self.wait_for_leader(self.timeout()).await?;
        self.snapshot().await?;
        if let Some(i) = self.inner.snapshots.current().and_then(|p| p.applied.0) {
            self.inner.raft.trigger().purge_log(i.index).await.map_err(Error::raft)?;
            let mut rx = self.inner.raft.metrics();
            let _ = tokio::time::timeout(
                self.timeout(),
                rx.wait_for(|m| m.purged.is_some_and(|p| p.index >= i.index)),
            )
            .await;
        }
        Ok(())
    }

    /// Add a node to the cluster (learner, then voter), on the leader wherever it is.
    pub(crate) async fn add_node(&self, id: u64, member: Member) -> Result<()> {
        let req = JoinRequest { id, member };
        self.on_leader::<peer::Join, _, _, _>(
            Kind::Write,
            req,
            MEMBERSHIP_CALL,
            "add the node",
            |req| async move {
                match self.add_member(req.id, req.member.clone(), false).await {
                    Err(e @ Error::NotLeader { .. }) => Here::Refused(req, e),
                    r => Here::Done(r),
                }
            },
        )
        .await
    }

    /// Add a node as a learner that is never promoted (a read replica: it replicates and serves
    /// reads, forwards writes, and never votes), on the leader wherever it is.
    pub(crate) async fn add_learner(&self, id: u64, member: Member) -> Result<()> {
        let req = JoinRequest { id, member };
        self.on_leader::<peer::JoinLearner, _, _, _>(
            Kind::Write,
            req,
            MEMBERSHIP_CALL,
            "add the learner",
            |req| async move {
                match self.add_member(req.id, req.member.clone(), true).await {
                    Err(e @ Error::NotLeader { .. }) => Here::Refused(req, e),
                    r => Here::Done(r),
                }
            },
        )
        .await
    }

    /// Remove a node from the cluster, on the leader wherever it is.
    pub(crate) async fn remove_node(&self, id: u64) -> Result<()> {
        self.on_leader::<peer::Remove, _, _, _>(
            Kind::Write,
            id,
            MEMBERSHIP_CALL,
            "remove the node",
            |id| async move {
                match self.remove_member(id).await {
                    Err(e @ Error::NotLeader { .. }) => Here::Refused(id, e),
                    r => Here::Done(r),
                }
            },
        )
        .await
    }

    /// Add a node as learner, wait for it to catch up, then (unless `learner_only`) make it a
    /// voter. Runs on the leader.
    async fn add_member(&self, id: u64, member: Member, learner_only: bool) -> Result<()> {
        if self.inner.restoring.load(Ordering::Acquire) {
            return Err(Error::NoLeader("the node is still seeding its restored data; retry".into()));
        }
        if !self.is_leader() {
            return Err(Error::NotLeader { leader: self.leader() });
        }
        let current = self.inner.raft.metrics().borrow().membership_config.clone();
        let voters: BTreeSet<u64> = current.membership().voter_ids().collect();
        if voters.contains(&id) {
            if learner_only {
                return Err(Error::InvalidRequest(format!(
                    "node {id} is a voter; remove it before it rejoins as a learner"
                )));
            }
            return Ok(());
        }
        self.inner.raft.add_learner(id, member, true).await.map_err(leader_error)?;
        if learner_only {
            tracing::info!(node = id, "member added as learner (read replica)");
            return Ok(());
        }
        let add = BTreeSet::from([id]);
        self.inner
            .raft
            .change_membership(openraft::ChangeMembers::AddVoterIds(add), false)
            .await
            .map_err(leader_error)?;
        tracing::info!(node = id, "member added as voter");
        Ok(())
    }

    /// Remove a node from the cluster (voter and learner). Runs on the leader.
    async fn remove_member(&self, id: u64) -> Result<()> {
        if !self.is_leader() {
            return Err(Error::NotLeader { leader: self.leader() });
        }
        let ids = BTreeSet::from([id]);
        let current = self.inner.raft.metrics().borrow().membership_config.clone();
        if current.membership().voter_ids().any(|v| v == id) {
            self.inner
                .raft
                .change_membership(openraft::ChangeMembers::RemoveVoters(ids.clone()), false)
                .await
                .map_err(leader_error)?;
        }
        let current = self.inner.raft.metrics().borrow().membership_config.clone();
        if current.membership().get_node(&id).is_some() {
            self.inner
                .raft
                .change_membership(openraft::ChangeMembers::RemoveNodes(ids), false)
                .await
                .map_err(leader_error)?;
        }
        tracing::info!(node = id, "member removed");
        Ok(())
    }

    /// Hand leadership to `target`: stop heartbeats so that the followers' leader leases lapse,
    /// and ask `target` to campaign until some other node leads. Runs on the leader.
    pub(crate) async fn step_down(&self, target: u64) -> Result<()> {
        if !self.is_leader() {
            return Err(Error::NotLeader { leader: self.leader() });
        }
        let Some(m) = self.member(target) else {
            return Err(Error::InvalidRequest(format!("node {target} is not a member")));
        };
        let rc = self.inner.raft.runtime_config();
        rc.heartbeat(false);
        // Leases must lapse first: allow several election timeouts.
        let budget =
            self.timeout().max(Duration::from_millis(10 * self.inner.config.election_timeout_max_ms));
        let deadline = Instant::now() + budget;
        let mut result = Err(Error::Timeout("leadership did not move".into()));
        while Instant::now() < deadline {
            let _ = self.inner.peers.call::<peer::Elect>(&m.raft_addr, &(), Duration::from_secs(2)).await;
            tokio::time::sleep(Duration::from_millis(150)).await;
            if self.leader().is_some_and(|l| l != self.inner.id) {
                result = Ok(());
                break;
            }
        }
        rc.heartbeat(true);
        tracing::info!(node = self.inner.id, target, ok = result.is_ok(), "leadership transfer");
        result
    }
}
