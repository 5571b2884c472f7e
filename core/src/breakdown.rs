//! Where one write's time goes: timestamps at each stage of the write path, recorded only while
//! `hiqlite bench --breakdown` asks for them (otherwise a stage costs one relaxed atomic load).
//!
//! Events carry the node that saw them, so that a process holding a whole cluster (the bench)
//! can tell the leader's log append from a follower's. [`report`] reads the events of writes made
//! one at a time (concurrency 1) and gives the median time spent between consecutive stages.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// A point on the write path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// `Node::write` was called on the leader.
    Call,
    /// The proposer hands the command to openraft (`client_write`).
    Propose,
    /// A node's log store was asked to append entries.
    Append,
    /// A node's log store has the entries on disk (after `fdatasync`).
    Flushed,
    /// The leader sends an AppendEntries request that carries entries.
    ReplicaSend,
    /// A follower received that request.
    ReplicaRecv,
    /// The follower answers it.
    ReplicaReply,
    /// The leader has the follower's answer.
    ReplicaDone,
    /// A node's state machine was asked to apply committed entries.
    Apply,
    /// That apply is done (SQLite committed).
    Applied,
    /// openraft answered `client_write`.
    Written,
    /// `Node::write` returns to its caller.
    Answer,
}

static ON: AtomicBool = AtomicBool::new(false);
static EVENTS: Mutex<Vec<(Stage, u64, Instant)>> = Mutex::new(Vec::new());

/// Record that `node` reached `stage` now (if recording).
#[inline]
pub fn mark(stage: Stage, node: u64) {
    if ON.load(Ordering::Relaxed) {
        let now = Instant::now();
        EVENTS.lock().unwrap_or_else(|p| p.into_inner()).push((stage, node, now));
    }
}

/// Start recording (dropping earlier events).
pub fn start() {
    EVENTS.lock().unwrap_or_else(|p| p.into_inner()).clear();
    ON.store(true, Ordering::SeqCst);
}

/// Stop recording and take the events.
pub fn stop() -> Vec<(Stage, u64, Instant)> {
    ON.store(false, Ordering::SeqCst);
    std::mem::take(&mut *EVENTS.lock().unwrap_or_else(|p| p.into_inner()))
}

/// The chain of one replicated write, in order: (label, stage, whose event). The leader's own
/// flush runs beside replication (`Who::LeaderBeside`): it is timed from the stage before it but
/// the chain goes on from that stage too.
const CHAIN: [(&str, Stage, Who); 14] = [
    ("call on leader", Stage::Call, Who::Leader),
    ("proposer -> client_write", Stage::Propose, Who::Leader),
    ("raft core -> leader log append", Stage::Append, Who::Leader),
    ("(beside) leader write + fdatasync", Stage::Flushed, Who::LeaderBeside),
    ("core -> replication request sent", Stage::ReplicaSend, Who::Leader),
    ("append stream to follower", Stage::ReplicaRecv, Who::Follower),
    ("follower core -> log append", Stage::Append, Who::Follower),
    ("follower write + fdatasync", Stage::Flushed, Who::Follower),
    ("follower core -> reply", Stage::ReplicaReply, Who::Follower),
    ("reply on the stream to leader", Stage::ReplicaDone, Who::Leader),
    ("commit -> leader apply starts", Stage::Apply, Who::Leader),
    ("SQLite apply", Stage::Applied, Who::Leader),
    ("apply -> client_write returns", Stage::Written, Who::Leader),
    ("proposer -> caller answered", Stage::Answer, Who::Leader),
];

#[derive(Clone, Copy, PartialEq)]
enum Who {
    Leader,
    /// On the leader, overlapping the stages after it.
    LeaderBeside,
    Follower,
}

/// Median microseconds spent reaching each stage from the one before, over the writes found in
/// `events` (each write starts at a `Call` on `leader`), plus the median whole write. Stages a
/// single-node cluster never reaches are left out. Returns (rows, writes analysed).
pub fn report(events: &[(Stage, u64, Instant)], leader: u64) -> (Vec<(&'static str, f64)>, f64, usize) {
    let calls: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, (s, n, _))| *s == Stage::Call && *n == leader)
        .map(|(i, _)| i)
        .collect();
    let mut deltas: Vec<Vec<f64>> = vec![Vec::new(); CHAIN.len()];
    let mut totals = Vec::new();
    for w in calls.windows(2).map(|w| (w[0], w[1])).chain(calls.last().map(|l| (*l, events.len()))) {
        let seg = &events[w.0..w.1];
        let mut at = 0usize;
        let mut follower: Option<u64> = None;
        let mut prev: Option<Instant> = None;
        let mut found: Vec<Option<f64>> = vec![None; CHAIN.len()];
        for (k, (_, stage, who)) in CHAIN.iter().enumerate() {
            let hit = seg[at..].iter().position(|(s, n, _)| {
                *s == *stage
                    && match who {
                        Who::Leader | Who::LeaderBeside => *n == leader,
                        Who::Follower => *n != leader && follower.is_none_or(|f| f == *n),
                    }
            });
            if let Some(p) = hit {
                let (_, n, t) = seg[at + p];
                if *who == Who::Follower {
                    follower = Some(n);
                }
                if let Some(pv) = prev {
                    found[k] = Some(t.saturating_duration_since(pv).as_secs_f64() * 1e6);
                }
                if *who != Who::LeaderBeside {
                    prev = Some(t);
                    at += p + 1;
                }
            }
        }
        if found[CHAIN.len() - 1].is_none() {
            continue;
        }
        let (first, last) = (seg[0].2, prev.unwrap_or(seg[0].2));
        totals.push(last.saturating_duration_since(first).as_secs_f64() * 1e6);
        for (k, f) in found.into_iter().enumerate() {
            if let Some(f) = f {
                deltas[k].push(f);
            }
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    let n = totals.len();
    let rows = CHAIN
        .iter()
        .zip(deltas.iter_mut())
        .skip(1)
        .filter(|(_, d)| d.len() * 2 >= n.max(1))
        .map(|((label, _, _), d)| (*label, median(d)))
        .collect();
    (rows, median(&mut totals), n)
}
