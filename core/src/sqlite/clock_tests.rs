//! The replicated clock of coordination entries: a stamp behind an earlier one (a new leader
//! whose wall clock is behind the old leader's) never shortens a lease or reorders expiry.

use std::sync::Arc;

use super::writer::{LogPos, Op, Writer};
use crate::command::Command;
use crate::coord::{CoordAnswer, CoordOp, LockOutcome};

async fn at(w: &Writer, index: u64, ts_ms: i64, op: CoordOp) -> CoordAnswer {
    let pos = LogPos { index, term: 1, node_id: 1 };
    let mut r =
        w.apply(vec![(pos, Op::Command(Arc::new(Command::Coord { op, ts_ms })))]).await.expect("apply");
    r.pop().and_then(|r| r.coord).expect("a coordination answer")
}

fn acquire(waiter: &str) -> CoordOp {
    CoordOp::LockAcquire { name: "l".into(), waiter: waiter.into(), lease_ms: 5_000, wait_ms: None }
}

#[tokio::test]
async fn a_stamp_from_behind_does_not_shorten_a_lease() {
    let dir = tempfile::tempdir().expect("tmp");
    let cache =
        Arc::new(crate::cache::QueryCache::new(crate::CacheConfig { enabled: false, ..Default::default() }));
    let w = Writer::start(&dir.path().join("hiqlite.db"), cache).expect("writer");
    assert_eq!(at(&w, 1, 10_000, acquire("a")).await, CoordAnswer::Lock(LockOutcome::Granted(1)));
    // A renewal stamped 1 s behind the grant: the lease still runs to 15,000 (10,000 + 5,000), not
    // to 14,000.
    let renew = CoordOp::LockRenew { name: "l".into(), token: 1, lease_ms: 5_000 };
    assert_eq!(at(&w, 2, 9_000, renew).await, CoordAnswer::Changed(true));
    assert_eq!(at(&w, 3, 14_500, acquire("b")).await, CoordAnswer::Lock(LockOutcome::Busy));
    assert_eq!(at(&w, 4, 15_000, acquire("b")).await, CoordAnswer::Lock(LockOutcome::Granted(2)));
    // A key written with a TTL does not come back to life for a stamp from before its expiry.
    let put = CoordOp::KvPut { ns: "n".into(), key: "k".into(), value: b"v".to_vec(), ttl_ms: Some(1_000) };
    assert_eq!(at(&w, 5, 20_000, put).await, CoordAnswer::Done);
    assert_eq!(at(&w, 6, 21_000, CoordOp::Expire).await, CoordAnswer::Done);
    let take = CoordOp::KvTake { ns: "n".into(), key: "k".into() };
    assert_eq!(at(&w, 7, 20_500, take).await, CoordAnswer::Value(None));
    w.shutdown().await.expect("shutdown");
}
