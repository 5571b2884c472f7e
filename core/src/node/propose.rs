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

/// The text of the entry that gives a cluster its first foreign-key setting. The writer applies
/// it only while the cluster has none (the marker comment says so), so however many leaders
/// propose it, the first one applied decides, identically on every replica.
pub(crate) fn initial_fk_sql(on: bool) -> String {
    format!(
        "PRAGMA foreign_keys = {} /* {} */",
        if on { "ON" } else { "OFF" },
        crate::sqlite::INITIAL_FK_MARK
    )
}

fn initial_fk_command(on: bool) -> Command {
    Command::Execute {
        stmts: vec![crate::value::Statement::from(initial_fk_sql(on))],
        mode: crate::command::ExecMode::Transaction,
        ts_ms: 0,
        seed: 0,
    }
}

/// What the proposer needs to give a new cluster its foreign-key setting.
pub(super) struct FkInit {
    /// The cluster's setting as this node's writer last applied it.
    pub applied: crate::sqlite::writer::FkSetting,
    /// This node's configured initial value.
    pub initial: bool,
}

/// The proposer task: one per node, fed by [`Node::propose`].
pub(super) async fn proposer(
    raft: Raft,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Proposal>,
    timeout: Duration,
    fk: FkInit,
) {
    let fk = Arc::new(fk);
    let slots = Arc::new(tokio::sync::Semaphore::new(PROPOSALS_IN_FLIGHT));
    let mut held: Option<Proposal> = None;
    loop {
        let first = match held.take() {
            Some(p) => p,
            None => match rx.recv().await {
                Some(p) => p,
                None => return,
            },
        };
        let Ok(permit) = slots.clone().acquire_owned().await else { return };
        let mut size = command_size(&first.0);
        // A command the writer applies outside its transaction (VACUUM, foreign_keys = ...)
        // gets an entry of its own, so it never shares a batch's savepoints.
        let alone = crate::sqlkind::runs_alone(&first.0);
        let mut batch = vec![first];
        while !alone && batch.len() < MAX_BATCH && size < MAX_BATCH_BYTES {
            match rx.try_recv() {
                Ok(p) if crate::sqlkind::runs_alone(&p.0) => {
                    held = Some(p);
                    break;
                }
                Ok(p) => {
                    size += command_size(&p.0);
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        let raft = raft.clone();
        let fk = fk.clone();
        tokio::spawn(async move {
            if fk.applied.load(std::sync::atomic::Ordering::Acquire) == crate::sqlite::writer::FK_UNSET {
                // The cluster has no foreign-key setting yet: record this node's initial value
                // in an entry before this write (a no-op if another got there first).
                let mut init = initial_fk_command(fk.initial);
                init.stamp();
                let _ = tokio::time::timeout(timeout, raft.client_write(init)).await;
            }
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
    crate::breakdown::mark(crate::breakdown::Stage::Propose, me);
    let written = tokio::time::timeout(timeout, raft.client_write(cmd)).await;
    crate::breakdown::mark(crate::breakdown::Stage::Written, me);
    let r = match written {
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
