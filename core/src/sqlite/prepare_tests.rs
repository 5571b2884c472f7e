//! The writer's prepared statements stay prepared: SQLite re-prepares a statement whose plan
//! depends on a bound value at every bind (a parameter compared with a TEXT column in an
//! aggregate or ORDER BY query is one such case), which costs more than running it. Every kind
//! of coordination entry runs many times here with changing values; none may re-prepare.

use std::sync::Arc;

use super::writer::{LogPos, Op, Writer};
use crate::command::Command;
use crate::coord::CoordOp;

fn ops(i: i64) -> Vec<CoordOp> {
    let (ns, key, name) = (format!("ns{}", i % 3), format!("k{}", i % 5), format!("lock{}", i % 2));
    let ttl = (i % 2 == 0).then_some(50);
    vec![
        CoordOp::KvPut { ns: ns.clone(), key: key.clone(), value: vec![i as u8; 8], ttl_ms: ttl },
        CoordOp::KvLimit { ns: ns.clone(), max_entries: Some(3) },
        CoordOp::KvReplace {
            ns: ns.clone(),
            key: key.clone(),
            expected: Some(vec![i as u8; 8]),
            new: Some(vec![1; 4]),
            ttl_ms: ttl,
        },
        CoordOp::KvTake { ns: ns.clone(), key: format!("k{}", (i + 1) % 5) },
        CoordOp::KvDelete { ns, key },
        CoordOp::CounterAdd { name: format!("c{}", i % 3), delta: i },
        CoordOp::CounterSet { name: format!("c{}", (i + 1) % 3), value: i },
        CoordOp::LockAcquire {
            name: name.clone(),
            waiter: format!("w{i}"),
            lease_ms: 30,
            wait_ms: Some(100),
        },
        CoordOp::LockAcquire {
            name: name.clone(),
            waiter: format!("x{i}"),
            lease_ms: 30,
            wait_ms: Some(100),
        },
        CoordOp::LockRenew { name: name.clone(), token: i, lease_ms: 30 },
        CoordOp::LockRelease { name: name.clone(), token: i - 1 },
        CoordOp::LockCancel { name, waiter: format!("x{}", i - 1) },
        CoordOp::Notify { channel: format!("ch{}", i % 2), payload: vec![7; 3] },
        CoordOp::Expire,
    ]
}

#[tokio::test]
async fn coordination_entries_do_not_re_prepare_statements() {
    let dir = tempfile::tempdir().expect("tmp");
    let cache =
        Arc::new(crate::cache::QueryCache::new(crate::CacheConfig { enabled: false, ..Default::default() }));
    let w = Writer::start(&dir.path().join("hiqlite.db"), cache).expect("writer");
    let mut index = 0;
    for i in 1..=40i64 {
        for op in ops(i) {
            index += 1;
            let pos = LogPos { index, term: 1, node_id: 1 };
            // 20 ms of leader clock per round: TTLs and leases run out along the way.
            let cmd = Command::Coord { op, ts_ms: 1_000_000 + i * 20 };
            w.apply(vec![(pos, Op::Command(Arc::new(cmd)))]).await.expect("apply");
        }
    }
    let again = w.reprepared().expect("the writer's statements");
    assert!(again.is_empty(), "statements re-prepared at every run: {again:#?}");
    w.shutdown().await.expect("shutdown");
}
