//! Quorum-loss recovery (`hiqlite recover`): rewrite a stopped node's membership so that the
//! survivors of a cluster that lost its majority for good form a new cluster with their data.
//!
//! Raft cannot change its membership without a majority of the old one, so this is done offline,
//! as rqlite's `peers.json` and etcd's `--force-new-cluster` do: a membership entry naming the new
//! voters is appended to the node's log, one term above everything it has seen, and its vote is
//! set to that term. A membership entry takes effect as soon as it is in a log, so the restarted
//! node counts votes among the new voters only, wins an election, and its first entry as leader
//! commits everything before it, the new membership included. Only writes this node's log holds
//! survive: pick the survivor whose log is the most up to date (the highest last term, then the
//! highest last index, which [`recover`] reports), and run it with the same `voters` on every
//! survivor that stays.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use openraft::storage::RaftLogStorage;
use openraft::{CommittedLeaderId, EntryPayload, Membership, Vote};

use crate::command::Member;
use crate::config::Peer;
use crate::error::{Error, Result};
use crate::raft::log_store::LogStore;
use crate::raft::{Entry, LogId};

/// What [`recover`] found in the data directory and what it wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// The last entry of the log before recovery: (term, index). Compare it between survivors:
    /// the highest term wins, then the highest index.
    pub last_log: Option<(u64, u64)>,
    /// The term of the new membership entry (and of the node's vote).
    pub term: u64,
    /// The index of the new membership entry.
    pub index: u64,
    /// The new voters.
    pub voters: Vec<u64>,
}

/// Give the stopped node whose data is in `data_dir` a new membership of `voters` (which must
/// include it). Refuses while a process holds the data directory.
pub async fn recover(data_dir: &Path, voters: &[Peer], log_segment_bytes: u64) -> Result<Recovered> {
    let ids: BTreeSet<u64> = voters.iter().map(|p| p.id).collect();
    if ids.is_empty() {
        return Err(Error::Config("recover needs at least one voter (--voters ID=RAFT/API,...)".into()));
    }
    if ids.len() != voters.len() {
        return Err(Error::Config("recover: a voter id is given twice".into()));
    }
    let log_dir = data_dir.join("log");
    if !log_dir.is_dir() {
        return Err(Error::Config(format!(
            "{} holds no hiqlite data (no log directory)",
            data_dir.display()
        )));
    }
    let (_lock, lock_path, existed) = super::boot::acquire_lock(data_dir)?;
    let log = LogStore::open(&log_dir, log_segment_bytes)?;
    let result = rewrite(&log, voters, &ids).await;
    log.close().await;
    // A lock file that was there before marks an unclean stop: leave it, so the next start
    // still replays the log. One this call created goes.
    if !existed {
        let _ = std::fs::remove_file(&lock_path);
    }
    result
}

async fn rewrite(log: &LogStore, voters: &[Peer], ids: &BTreeSet<u64>) -> Result<Recovered> {
    let (last, _) = log.bounds();
    let Some(last) = last else {
        return Err(Error::Config(
            "the log is empty: this node never joined a cluster, nothing to recover".into(),
        ));
    };
    let mut store = log.clone();
    let vote = store.read_vote().await.map_err(Error::storage)?;
    let term = vote.map_or(0, |v| v.leader_id().term).max(last.leader_id.term) + 1;
    let leader = *ids.iter().next().ok_or_else(|| Error::Config("no voters".into()))?;
    let nodes: BTreeMap<u64, Member> = voters
        .iter()
        .map(|p| (p.id, Member { raft_addr: p.raft_addr.clone(), api_addr: p.api_addr.clone() }))
        .collect();
    let membership = Membership::new(vec![ids.clone()], nodes);
    let entry = Entry {
        log_id: LogId::new(CommittedLeaderId::new(term, leader), last.index + 1),
        payload: EntryPayload::Membership(membership),
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    log.append_with(
        [entry],
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
        false,
    )
    .map_err(Error::storage)?;
    rx.await.map_err(|_| Error::Storage("the log closed before the entry was written".into()))??;
    store.save_vote(&Vote::new(term, leader)).await.map_err(Error::storage)?;
    tracing::warn!(term, index = last.index + 1, voters = ?ids, "membership rewritten for quorum-loss recovery");
    Ok(Recovered {
        last_log: Some((last.leader_id.term, last.index)),
        term,
        index: last.index + 1,
        voters: ids.iter().copied().collect(),
    })
}
