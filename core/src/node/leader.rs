//! Leader routing: the one function that runs a request where the leader is — here when this
//! node leads, else over the peer protocol — and retries it only while it is certain nothing
//! was applied, as [`crate::routing`] classifies each failure.

use std::future::Future;
use std::time::{Duration, Instant};

use super::propose::Proposed;
use super::Node;
use crate::command::{Command, Response};
use crate::error::{Error, Result};
use crate::peer::{self, Route};
use crate::routing::{self, Failure, Kind, Verdict};

/// What running a request on this node came to.
pub(super) enum Here<T, Q> {
    /// Ran (or failed for good): the answer.
    Done(Result<T>),
    /// Not run because this node does not lead (any more): the request comes back, with why.
    Refused(Q, Error),
}

/// Pause between attempts while waiting for a (new) leader.
const LEADER_WAIT: Duration = Duration::from_millis(50);

impl Node {
    /// Run `req` on the leader: `here(req)` when this node leads, else route `R` to the
    /// leader's peer listener (each call bounded by `call_timeout` and the request deadline).
    /// Attempts repeat until the request deadline while nothing was applied; `what` names the
    /// request in the error when no leader took it.
    pub(super) async fn on_leader<R, T, F, Fut>(
        &self,
        kind: Kind,
        mut req: R::Req,
        call_timeout: Duration,
        what: &str,
        mut here: F,
    ) -> Result<T>
    where
        R: Route<Resp = Result<T, Error>>,
        F: FnMut(R::Req) -> Fut,
        Fut: Future<Output = Here<T, R::Req>>,
    {
        let deadline = Instant::now() + self.timeout();
        let mut last: Option<Error> = None;
        loop {
            let current = self.leader();
            match current {
                Some(id) if id == self.inner.id => match here(req).await {
                    Here::Done(r) => return r,
                    Here::Refused(back, why) => {
                        req = back;
                        last = Some(why);
                    }
                },
                Some(id) => match self.member(id) {
                    None => last = Some(Error::NoLeader(format!("leader {id} is not in the membership"))),
                    Some(m) => {
                        let budget = call_timeout.min(deadline.saturating_duration_since(Instant::now()));
                        let failure = match self.inner.peers.call::<R>(&m.raft_addr, &req, budget).await {
                            Ok(Ok(v)) => return Ok(v),
                            Ok(Err(e)) => Failure::Answer(e),
                            Err(f) => f,
                        };
                        match routing::classify(kind, failure) {
                            Verdict::Fail(e) => return Err(e),
                            Verdict::Retry(e) => last = Some(e),
                        }
                    }
                },
                None => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(match last {
                    None => Error::NoLeader(format!("no leader to {what}")),
                    Some(e @ (Error::NotLeader { .. } | Error::Unreachable(_) | Error::NoLeader(_))) => {
                        Error::NoLeader(format!("no leader to {what}: {e}"))
                    }
                    Some(e) => e,
                });
            }
            let mut rx = self.inner.raft.metrics();
            let _ = tokio::time::timeout(
                LEADER_WAIT.min(left),
                rx.wait_for(|m| m.current_leader.is_some() && m.current_leader != current),
            )
            .await;
        }
    }

    /// Replicate a command through the leader, from any node. Retried only while it is
    /// certain the command was not applied (no leader yet, leader changed before accepting).
    pub(crate) async fn write(&self, cmd: Command) -> Result<Response> {
        use crate::breakdown::{mark, Stage};
        mark(Stage::Call, self.id());
        let started = std::time::Instant::now();
        let r = self
            .on_leader::<peer::Write, _, _, _>(Kind::Write, cmd, self.timeout(), "accept the write", |cmd| {
                let node = self.clone();
                async move {
                    match node.propose(cmd).await {
                        Ok(Proposed::Done(r)) => Here::Done(r),
                        Ok(Proposed::Refused(back, leader)) => {
                            Here::Refused(back, Error::NotLeader { leader })
                        }
                        Err(e) => Here::Done(Err(e)),
                    }
                }
            })
            .await;
        mark(Stage::Answer, self.id());
        self.activity().wrote(started.elapsed());
        r
    }
}
