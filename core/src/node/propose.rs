//! Proposing writes on the leader with group commit: openraft 0.9's core appends and fsyncs one
//! client write at a time, so the batching happens before it. A proposer task gathers the
//! commands that arrive while earlier proposals are in flight into one `Command::Batch` entry,
//! and answers each caller from the batch response.

use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};

use super::Node;
use crate::command::{Command, Response};
use crate::error::{Error, Result};
use crate::raft::Raft;
use crate::value::Params;

pub(super) type Proposal = (Command, tokio::sync::oneshot::Sender<Proposed>);

/// What became of a proposal.
pub(super) enum Proposed {
    /// Proposed; this is the outcome.
    Done(Result<Response>),
    /// Never proposed (this node is not the leader): the command comes back for a retry.
    Refused(Command, Option<u64>),
}

/// Most proposals in flight at once; while they are busy, new ones queue and go out together.
const PROPOSALS_IN_FLIGHT: usize = 4;
/// Most client commands in one log entry.
const MAX_BATCH: usize = 1024;
/// Most statement bytes in one log entry (past the first command).
const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;

fn command_size(c: &Command) -> usize {
    match c {
        Command::Execute { stmts, .. } => stmts
            .iter()
            .map(|s| {
                s.sql.len()
                    + match &s.params {
                        Params::None => 0,
                        Params::Positional(v) => v.iter().map(crate::Value::size).sum(),
                        Params::Named(v) => v.iter().map(|(k, v)| k.len() + v.size()).sum(),
                    }
            })
            .sum(),
        Command::Migrate { migrations, .. } => migrations.iter().map(|m| m.sql.len()).sum(),
        Command::Session { stmts, .. } => stmts.iter().map(|s| s.sql.len()).sum(),
        Command::Batch(cmds) => cmds.iter().map(command_size).sum(),
    }
}

/// The proposer task: one per node, fed by [`Node::propose`].
pub(super) async fn proposer(
    raft: Raft,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Proposal>,
    timeout: Duration,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(PROPOSALS_IN_FLIGHT));
    while let Some(first) = rx.recv().await {
        let Ok(permit) = slots.clone().acquire_owned().await else { return };
        let mut size = command_size(&first.0);
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH && size < MAX_BATCH_BYTES {
            match rx.try_recv() {
                Ok(p) => {
                    size += command_size(&p.0);
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        let raft = raft.clone();
        tokio::spawn(async move {
            propose(&raft, batch, timeout).await;
            drop(permit);
        });
    }
}

async fn propose(raft: &Raft, batch: Vec<Proposal>, timeout: Duration) {
    let (leader, me) = {
        let m = raft.metrics();
        let m = m.borrow();
        (m.current_leader, m.id)
    };
    if leader != Some(me) {
        // Never proposed: the caller may safely try the new leader.
        for (cmd, tx) in batch {
            let _ = tx.send(Proposed::Refused(cmd, leader));
        }
        return;
    }
    let (mut cmds, waiters): (Vec<Command>, Vec<_>) = batch.into_iter().unzip();
    let single = cmds.len() == 1;
    let mut cmd = match cmds.pop() {
        Some(c) if single => c,
        Some(c) => {
            cmds.push(c);
            Command::Batch(cmds)
        }
        None => return,
    };
    cmd.stamp();
    let r = match tokio::time::timeout(timeout, raft.client_write(cmd)).await {
        Err(_) => Err(Error::OutcomeUnknown(format!("write not confirmed within {timeout:?}"))),
        Ok(Ok(r)) => Ok(r.data),
        // openraft also answers ForwardToLeader for an entry that was appended and later cut
        // from this node's log; another node may still commit it, so it is not safe to retry.
        Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => Err(Error::OutcomeUnknown(
            format!("leadership moved to {:?} while the write was in flight", f.leader_id),
        )),
        Ok(Err(RaftError::Fatal(openraft::error::Fatal::Stopped))) => Err(Error::ShutDown),
        Ok(Err(e)) => Err(Error::raft(e)),
    };
    match r {
        Ok(resp) if single => {
            if let Some(tx) = waiters.into_iter().next() {
                let _ = tx.send(Proposed::Done(Ok(resp)));
            }
        }
        Ok(resp) => {
            let mut answers = resp.batch.into_iter();
            for tx in waiters {
                let a = answers
                    .next()
                    .ok_or_else(|| Error::Storage("batch response is missing an answer".into()));
                let _ = tx.send(Proposed::Done(a));
            }
        }
        Err(e) => {
            for tx in waiters {
                let _ = tx.send(Proposed::Done(Err(e.clone())));
            }
        }
    }
}

impl Node {
    /// Hand a command to the proposer of this node once no interactive transaction holds the
    /// database (waiting up to the busy timeout), and wait until it is applied.
    pub(super) async fn propose(&self, cmd: Command) -> Result<Proposed> {
        let _share = self.write_share().await?;
        self.propose_ungated(cmd).await
    }

    /// [`Node::propose`] for the holder of the write gate (a committing transaction).
    pub(super) async fn propose_ungated(&self, cmd: Command) -> Result<Proposed> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.inner.proposer.send((cmd, tx)).map_err(|_| Error::ShutDown)?;
        rx.await.map_err(|_| Error::ShutDown)
    }

    /// Propose a command on this node, which must be the leader; `NotLeader` (nothing
    /// proposed) otherwise.
    pub(crate) async fn write_as_leader(&self, cmd: Command) -> Result<Response> {
        match self.propose(cmd).await? {
            Proposed::Done(r) => r,
            Proposed::Refused(_, leader) => Err(Error::NotLeader { leader }),
        }
    }
}
