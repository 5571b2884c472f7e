//! Proposing writes on the leader with group commit: openraft 0.9's core appends and fsyncs one
//! client write at a time, so the batching happens before it. One proposal is in flight at a
//! time (measured against two and four: in 0.9 the core serializes appends and replication
//! anyway, so more in flight only made smaller batches). A command finding nothing in flight is
//! proposed by its caller's own task (no hop); commands arriving meanwhile wait and go out
//! together as one `Command::Batch` entry when the proposal in flight is done. Each caller is
//! answered from the batch response.

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

/// Longest the callers of the latest batch are waited for to come back.
const GATHER_BATCH: Duration = Duration::from_micros(200);
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
        Command::Coord { op, .. } => crate::coord::size(op),
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

/// Commands waiting to be proposed, and whether a proposal is in flight.
#[derive(Default)]
struct Queue {
    waiting: Vec<Proposal>,
    busy: bool,
}

/// The proposer of one node (see the module documentation).
pub(super) struct Proposer {
    raft: Raft,
    timeout: Duration,
    fk: FkInit,
    queue: std::sync::Mutex<Queue>,
    /// Commands in the latest proposal: their callers are likely to come back together.
    last_batch: std::sync::atomic::AtomicUsize,
    /// Wakes the drain task: commands wait, and the proposal in flight may be done.
    wake: Arc<tokio::sync::Notify>,
}

impl Drop for Proposer {
    fn drop(&mut self) {
        // Lets the drain task see the proposer is gone.
        self.wake.notify_one();
    }
}

impl Proposer {
    /// The proposer, with its drain task running.
    pub(super) fn start(raft: Raft, timeout: Duration, fk: FkInit) -> Arc<Proposer> {
        let wake = Arc::new(tokio::sync::Notify::new());
        let p = Arc::new(Proposer {
            raft,
            timeout,
            fk,
            queue: Default::default(),
            last_batch: Default::default(),
            wake: wake.clone(),
        });
        let weak = Arc::downgrade(&p);
        tokio::spawn(async move {
            loop {
                wake.notified().await;
                let Some(p) = weak.upgrade() else { return };
                p.drain().await;
            }
        });
        p
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Propose `cmd` and wait for its outcome.
    pub(super) async fn submit(self: &Arc<Self>, cmd: Command) -> Result<Proposed> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let direct = {
            let mut q = self.queue();
            // After a batch, its callers come back nearly together: the first of them waits
            // for the others instead of going out alone and leaving them a round behind.
            let alone = self.last_batch.load(std::sync::atomic::Ordering::Relaxed) <= 1;
            if alone && q.waiting.is_empty() && !q.busy {
                q.busy = true;
                Some((cmd, tx))
            } else {
                q.waiting.push((cmd, tx));
                None
            }
        };
        match direct {
            Some(p) => {
                self.run(vec![p]).await;
            }
            None => self.wake.notify_one(),
        }
        rx.await.map_err(|_| Error::ShutDown)
    }

    /// Propose one batch (`busy` is set). It is cleared, and the drain task woken, when this
    /// ends, even if the caller gives up waiting half-way.
    async fn run(self: &Arc<Self>, batch: Vec<Proposal>) {
        let _slot = Slot(self.clone());
        if self.fk.applied.load(std::sync::atomic::Ordering::Acquire) == crate::sqlite::writer::FK_UNSET {
            // The cluster has no foreign-key setting yet: record this node's initial value in
            // an entry before this write (a no-op if another got there first).
            let mut init = initial_fk_command(self.fk.initial);
            init.stamp();
            let _ = tokio::time::timeout(self.timeout, self.raft.client_write(Arc::new(init))).await;
        }
        self.last_batch.store(batch.len(), std::sync::atomic::Ordering::Relaxed);
        propose(&self.raft, batch, self.timeout).await;
    }

    /// Propose what waits once nothing is in flight.
    async fn drain(self: &Arc<Self>) {
        if self.queue().busy {
            // Woken again when the proposal in flight is done.
            return;
        }
        self.until_batch_gathered().await;
        let batch = {
            let mut q = self.queue();
            if q.waiting.is_empty() || q.busy {
                return;
            }
            q.busy = true;
            take_batch(&mut q.waiting)
        };
        let p = self.clone();
        tokio::spawn(async move { p.run(batch).await });
    }

    /// Wait, briefly, until as many commands wait as the latest proposal carried.
    async fn until_batch_gathered(&self) {
        let expected = self.last_batch.load(std::sync::atomic::Ordering::Relaxed);
        let deadline = tokio::time::Instant::now() + GATHER_BATCH;
        loop {
            let arrived = self.wake.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            if self.queue().waiting.len() >= expected {
                return;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return;
            }
        }
    }
}

/// The proposal in flight; ends it when dropped.
struct Slot(Arc<Proposer>);

impl Drop for Slot {
    fn drop(&mut self) {
        let more = {
            let mut q = self.0.queue();
            q.busy = false;
            !q.waiting.is_empty()
        };
        if more {
            self.0.wake.notify_one();
        }
    }
}

/// The longest prefix of `waiting` that makes one log entry: up to [`MAX_BATCH`] commands and
/// [`MAX_BATCH_BYTES`] (past the first). A command the writer applies outside its transaction
/// (VACUUM, `foreign_keys = ...`) gets an entry of its own, so it never shares a batch's
/// savepoints.
fn take_batch(waiting: &mut Vec<Proposal>) -> Vec<Proposal> {
    let mut n = 0;
    let mut size = 0;
    for p in waiting.iter() {
        let alone = crate::sqlkind::runs_alone(&p.0);
        if n > 0 && (alone || n >= MAX_BATCH || size >= MAX_BATCH_BYTES) {
            break;
        }
        n += 1;
        size += command_size(&p.0);
        if alone {
            break;
        }
    }
    let rest = waiting.split_off(n);
    std::mem::replace(waiting, rest)
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
    let written = tokio::time::timeout(timeout, raft.client_write(Arc::new(cmd))).await;
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
        self.inner.proposer.submit(cmd).await
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
