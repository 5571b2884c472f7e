//! The cluster as one node sees it, member by member: each member's own status (asked over the
//! peer route `NodeStatus`, all in parallel, each within a second), whether it answered and how
//! fast, and how far its applied index trails the leader's log. The web console's cluster page
//! shows this.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::Node;
use crate::status::Status;

/// How long a member may take to answer before it is shown unreachable.
const ASK_WITHIN: Duration = Duration::from_secs(1);

/// The cluster seen from one node.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Overview {
    /// The answering node.
    pub node: u64,
    /// The leader the answering node knows.
    pub leader: Option<u64>,
    /// The answering node's term.
    pub term: u64,
    /// Every member (voters and learners), by id.
    pub members: Vec<MemberView>,
}

/// One member as the answering node sees it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct MemberView {
    /// Node id.
    pub id: u64,
    /// Base URL of its client API (its console is at `/console/` there).
    pub api_addr: String,
    /// Its peer (Raft) address.
    pub raft_addr: String,
    /// A voter (else a learner).
    pub voter: bool,
    /// It answered.
    pub reachable: bool,
    /// Round trip of the question, in milliseconds.
    pub rtt_ms: Option<f64>,
    /// Why it did not answer.
    pub error: Option<String>,
    /// Its own status, when it answered.
    pub status: Option<Status>,
    /// Log entries between the leader's last log index and its applied index.
    pub lag: Option<u64>,
}

impl Node {
    /// Ask every member for its status (in parallel, each within a second) and put the answers
    /// side by side.
    pub(crate) async fn overview(&self) -> Overview {
        let st = self.status();
        let scheme = self.scheme();
        let asks = st.members.iter().map(|(id, m)| {
            let st = &st;
            async move {
                let t = Instant::now();
                let r = if *id == st.id {
                    Ok(st.clone())
                } else {
                    self.inner
                        .peers
                        .call::<crate::peer::NodeStatus>(&m.raft_addr, &(), ASK_WITHIN)
                        .await
                        .map_err(|e| e.to_string())
                };
                let (status, error) = match r {
                    Ok(s) => (Some(s), None),
                    Err(e) => (None, Some(e)),
                };
                MemberView {
                    id: *id,
                    api_addr: format!("{scheme}://{}", m.api_addr),
                    raft_addr: m.raft_addr.clone(),
                    voter: st.voters.contains(id),
                    reachable: status.is_some(),
                    rtt_ms: status.is_some().then(|| t.elapsed().as_secs_f64() * 1000.0),
                    error,
                    status,
                    lag: None,
                }
            }
        });
        let mut members = futures::future::join_all(asks).await;
        fill_lag(&mut members, st.leader);
        Overview { node: st.id, leader: st.leader, term: st.term, members }
    }
}

/// Each answering member's lag behind the leader's last log index (or, with the leader silent,
/// behind the furthest log any member reported).
fn fill_lag(members: &mut [MemberView], leader: Option<u64>) {
    let last = |m: &MemberView| m.status.as_ref().and_then(|s| s.last_log_index);
    let reference = members
        .iter()
        .find(|m| Some(m.id) == leader)
        .and_then(last)
        .or_else(|| members.iter().filter_map(last).max());
    for m in members.iter_mut() {
        let applied = m.status.as_ref().map(|s| s.applied_index.unwrap_or(0));
        m.lag = reference.zip(applied).map(|(r, a)| r.saturating_sub(a));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: u64, last: Option<u64>, applied: Option<u64>, answered: bool) -> MemberView {
        let status = answered.then(|| Status {
            id,
            state: "Follower".into(),
            leader: Some(1),
            term: 2,
            last_log_index: last,
            applied_index: applied,
            snapshot_index: None,
            snapshots_installed: 0,
            snapshots_built: 0,
            snapshot_build_ms: 0,
            members: Default::default(),
            voters: vec![1, 2, 3],
            role: "voter".into(),
            raft_addr: String::new(),
            api_addr: String::new(),
            startup: "new".into(),
            applied_index_at_start: None,
            entries_applied_since_start: 0,
            healthy: true,
            error: None,
            backup: None,
        });
        MemberView {
            id,
            api_addr: String::new(),
            raft_addr: String::new(),
            voter: true,
            reachable: answered,
            rtt_ms: None,
            error: None,
            status,
            lag: None,
        }
    }

    #[test]
    fn lag_is_measured_from_the_leaders_log() {
        let mut m = vec![member(1, Some(10), Some(10), true), member(2, Some(12), Some(7), true)];
        m.push(member(3, None, None, false));
        fill_lag(&mut m, Some(1));
        assert_eq!(m.iter().map(|m| m.lag).collect::<Vec<_>>(), [Some(0), Some(3), None]);
        // No leader: the furthest log reported is the reference.
        fill_lag(&mut m, None);
        assert_eq!(m.iter().map(|m| m.lag).collect::<Vec<_>>(), [Some(2), Some(5), None]);
        let mut fresh = vec![member(1, None, None, true)];
        fill_lag(&mut fresh, Some(1));
        assert_eq!(fresh[0].lag, None);
    }
}
