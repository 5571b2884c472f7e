//! A follower that notices a dead leader fast.
//!
//! openraft 0.9 grants a vote only once the voter's leader lease (`election_timeout_max` since it
//! last heard from the leader) is over, so the first election after a crash, started by a random
//! timer inside `[min, max]`, is almost always refused and a second round is needed: 2.1–2.3 s
//! of failover with 600/1200 ms timeouts. Here a follower whose leader fell silent checks whether
//! the leader's peer port still accepts connections; when it does not (the process is gone), the
//! follower starts an election the moment the other voters' leases end. Survivors go one after
//! another, by rank, so that they do not split the vote. A leader that is alive but slow accepts
//! connections, so it is left to the normal timers and never deposed by this.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{now_us, Node};

impl Node {
    /// Watch the leader while this node is a follower, until the node stops.
    pub(crate) fn spawn_watchdog(&self) {
        let node = self.clone();
        let mut stop = self.inner.shutdown_tx.subscribe();
        tokio::spawn(async move {
            let beat = Duration::from_millis(node.config().heartbeat_ms.max(10));
            // A stop also ends a check waiting for the others' leases: the task holds the node.
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = async {
                        tokio::time::sleep(beat).await;
                        node.check_leader(beat).await;
                    } => {}
                }
                if *stop.borrow() {
                    return;
                }
            }
        });
    }

    async fn check_leader(&self, beat: Duration) {
        let (me, leader, voters, addr) = {
            let m = self.inner.raft.metrics();
            let m = m.borrow();
            if !m.state.is_follower() {
                return;
            }
            let Some(leader) = m.current_leader.filter(|l| *l != m.id) else { return };
            let voters: Vec<u64> = m.membership_config.membership().voter_ids().collect();
            let addr = m.membership_config.membership().get_node(&leader).map(|n| n.raft_addr.clone());
            (m.id, leader, voters, addr)
        };
        let Some(addr) = addr else { return };
        if !voters.contains(&me) {
            return;
        }
        let last = self.inner.last_leader_contact_us.load(Ordering::Relaxed);
        if last == 0 || now_us().saturating_sub(last) < 2 * beat.as_micros() as u64 {
            return;
        }
        let reachable =
            matches!(tokio::time::timeout(beat, tokio::net::TcpStream::connect(&addr)).await, Ok(Ok(_)));
        if reachable {
            return;
        }
        // Survivors in id order; the first asks as soon as the leases end, the next one later
        // should the first fail.
        let rank = voters.iter().filter(|v| **v != leader && **v < me).count() as u64;
        let cfg = self.config();
        let at = last + 1000 * (cfg.election_timeout_max_ms + 20 + rank * (cfg.election_timeout_min_ms / 2));
        tokio::time::sleep(Duration::from_micros(at.saturating_sub(now_us()))).await;
        let unchanged = {
            let m = self.inner.raft.metrics();
            let m = m.borrow();
            m.state.is_follower() && m.current_leader == Some(leader)
        };
        if unchanged && self.inner.last_leader_contact_us.load(Ordering::Relaxed) == last {
            tracing::warn!(
                node = me,
                leader,
                silent_ms = now_us().saturating_sub(last) / 1000,
                "leader unreachable (connection refused): starting an election"
            );
            if let Err(e) = self.inner.raft.trigger().elect().await {
                tracing::warn!("could not start an election: {e}");
            }
        }
    }
}
