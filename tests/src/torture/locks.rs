//! The lock workload and its checker: clients take one distributed lock in a loop, each holding
//! it briefly, and record (token, enter, leave); the checker proves that no two holders
//! overlapped while their leases were valid and that fencing tokens only grew.
//!
//! A holder's interval ends at the earlier of the moment it stopped acting (just before it
//! asks to release) and the end of its lease as its guard knows it
//! ([`hiqlite::LockGuard::valid_until`], a conservative bound on the client's clock). A holder
//! cut off by a fault (its renewals fail) simply has a short interval: the lock is then
//! handed on when the lease ends on the leader's clock, which must not be before that bound.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::workload::{Ctx, Rng};

/// The lock every client of the workload contends for.
pub const LOCK: &str = "torture";
/// The lease each holder asks for (renewed by its guard every third of it).
pub const LEASE: Duration = Duration::from_millis(1500);

/// One time a client held the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holding {
    /// The client.
    pub process: usize,
    /// Its fencing token.
    pub token: i64,
    /// When `lock` returned (ns since the run started).
    pub enter: u64,
    /// When it stopped acting on the lock or its lease ended, whichever came first.
    pub leave: u64,
}

/// What one lock client did.
#[derive(Debug, Default)]
pub struct LockLog {
    /// Every time it held the lock (validly or not: an empty interval is kept too).
    pub held: Vec<Holding>,
    /// Acquisitions that failed or timed out.
    pub failed: u64,
    /// Holdings whose lease ran out before the holder was done (a fault cut it off).
    pub lapsed: u64,
}

/// One lock client: runs until `ctx.stop`. `first` is the node it talks to first, so that the
/// clients spread over the nodes.
pub async fn lock_client(ctx: Ctx, process: usize, first: usize, seed: u64) -> LockLog {
    let mut rng = Rng(seed);
    let mut log = LockLog::default();
    let mut urls = ctx.urls.clone();
    let n = urls.len().max(1);
    urls.rotate_left(first % n);
    let Ok(db) = hiqlite::Client::remote(urls).timeout(Duration::from_secs(3)).build() else { return log };
    let at = |i: Instant| u64::try_from(i.saturating_duration_since(ctx.t0).as_nanos()).unwrap_or(u64::MAX);
    while !ctx.stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let guard = match db.lock(LOCK, LEASE, Duration::from_millis(2_000)).await {
            Ok(g) => g,
            Err(_) => {
                log.failed += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let enter = Instant::now();
        ctx.record_latency(started);
        // The critical section: mostly brief; one in twelve outlasts the lease, so that the
        // guard must renew (and, under a fault, may lose the lock to the next waiter).
        let hold = if rng.below(12) == 0 { LEASE + LEASE / 3 } else { Duration::from_millis(rng.below(40)) };
        while enter.elapsed() < hold && guard.is_held() {
            tokio::time::sleep(Duration::from_millis(20).min(hold)).await;
        }
        let done = Instant::now();
        let until = guard.valid_until();
        if until < done {
            log.lapsed += 1;
        }
        log.held.push(Holding {
            process,
            token: guard.token(),
            enter: at(enter),
            leave: at(done.min(until)).max(at(enter)),
        });
        // A release that fails leaves the lock to its lease: nothing to record.
        let _ = guard.release().await;
    }
    log
}

/// Judge the holdings of all clients: no two valid intervals overlap, and in time order the
/// tokens strictly grow. Each finding is one line.
pub fn check_locks(held: &[Holding]) -> Vec<String> {
    let mut valid: Vec<&Holding> = held.iter().filter(|h| h.leave > h.enter).collect();
    valid.sort_by_key(|h| (h.enter, h.token));
    let mut out = Vec::new();
    let mut tokens: Vec<i64> = held.iter().map(|h| h.token).collect();
    tokens.sort_unstable();
    for w in tokens.windows(2) {
        if w[0] == w[1] {
            out.push(format!("token {} was handed out twice", w[0]));
        }
    }
    for w in valid.windows(2) {
        let (a, b) = (w[0], w[1]);
        if b.enter < a.leave {
            out.push(format!(
                "holders overlapped: client {} (token {}) held it until {:.3} s, client {} (token {}) \
                 entered at {:.3} s",
                a.process,
                a.token,
                a.leave as f64 / 1e9,
                b.process,
                b.token,
                b.enter as f64 / 1e9
            ));
        }
        if b.token <= a.token {
            out.push(format!(
                "tokens went back: token {} (client {}) entered after token {} (client {})",
                b.token, b.process, a.token, a.process
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(process: usize, token: i64, enter: u64, leave: u64) -> Holding {
        Holding { process, token, enter, leave }
    }

    #[test]
    fn disjoint_growing_holdings_pass() {
        assert!(check_locks(&[h(0, 1, 0, 10), h(1, 2, 10, 20), h(0, 3, 25, 30)]).is_empty());
    }

    #[test]
    fn an_overlap_is_found() {
        let found = check_locks(&[h(0, 1, 0, 10), h(1, 2, 9, 20)]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("overlapped"));
    }

    #[test]
    fn a_token_that_goes_back_or_repeats_is_found() {
        assert!(check_locks(&[h(0, 2, 0, 10), h(1, 1, 10, 20)])[0].contains("went back"));
        assert!(check_locks(&[h(0, 2, 0, 10), h(1, 2, 10, 20)])[0].contains("twice"));
    }

    #[test]
    fn a_lapsed_holding_does_not_count_as_overlap() {
        // Client 0's lease ended at 5 (its interval is cut there); client 1 entered at 6.
        assert!(check_locks(&[h(0, 1, 0, 5), h(1, 2, 6, 20), h(0, 3, 20, 20)]).is_empty());
    }
}
