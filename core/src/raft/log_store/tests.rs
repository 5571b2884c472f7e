//! Tests of the segmented log: appends, reopen, torn tails, truncation and purge.

use super::*;
use openraft::storage::RaftLogStorage;
use openraft::RaftLogReader;
use openraft::{CommittedLeaderId, EntryPayload};

fn ent(term: u64, index: u64) -> Entry {
    Entry { log_id: LogId::new(CommittedLeaderId::new(term, 1), index), payload: EntryPayload::Blank }
}

async fn append(store: &mut LogStore, entries: Vec<Entry>) {
    append_deferred(store, entries, false).await
}

/// `defer`: flushed on the flush thread, as the leader's own appends are.
async fn append_deferred(store: &mut LogStore, entries: Vec<Entry>, defer: bool) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    store
        .append_with(
            entries,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
            defer,
        )
        .expect("append");
    rx.await.expect("flushed").expect("flush ok");
}

#[tokio::test]
async fn segments_roll_purge_and_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = LogStore::open(dir.path(), 1024).expect("open");
    for (n, chunk) in (1..=300u64).collect::<Vec<_>>().chunks(7).enumerate() {
        append_deferred(&mut store, chunk.iter().map(|i| ent(1, *i)).collect(), n % 2 == 0).await;
    }
    assert!(store.segment_count() > 1, "small segments must roll");
    store.purge(LogId::new(CommittedLeaderId::new(1, 1), 200)).await.expect("purge");
    let segs_after = store.segment_count();
    store.truncate(LogId::new(CommittedLeaderId::new(1, 1), 251)).await.expect("truncate");
    append(&mut store, vec![ent(2, 251), ent(2, 252)]).await;
    store.close().await;
    drop(store);

    let mut store = LogStore::open(dir.path(), 1024).expect("reopen");
    assert_eq!(store.segment_count(), segs_after);
    let st = store.get_log_state().await.expect("state");
    assert_eq!(st.last_purged_log_id.map(|l| l.index), Some(200));
    assert_eq!(st.last_log_id, Some(LogId::new(CommittedLeaderId::new(2, 1), 252)));
    let got = store.try_get_log_entries(195..=252).await.expect("read");
    assert_eq!(got.first().map(|e| e.log_id.index), Some(201));
    assert_eq!(got.len(), 52);
    assert_eq!(got[50].log_id.leader_id.term, 2);
    store.close().await;
}

#[tokio::test]
async fn torn_tail_is_truncated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = LogStore::open(dir.path(), 1 << 20).expect("open");
    append(&mut store, (1..=10).map(|i| ent(1, i)).collect()).await;
    store.close().await;
    drop(store);
    let seg = dir.path().join(seg_name(1));
    let len = std::fs::metadata(&seg).expect("meta").len();
    let f = OpenOptions::new().write(true).open(&seg).expect("open seg");
    f.set_len(len - 3).expect("cut");
    drop(f);
    let mut store = LogStore::open(dir.path(), 1 << 20).expect("reopen after torn write");
    let st = store.get_log_state().await.expect("state");
    assert_eq!(st.last_log_id.map(|l| l.index), Some(9));
    append(&mut store, vec![ent(1, 10)]).await;
    store.close().await;
}

#[tokio::test]
async fn preallocated_tail_after_a_crash_is_where_the_log_ends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = LogStore::open(dir.path(), 1 << 20).expect("open");
    append(&mut store, (1..=10).map(|i| ent(1, i)).collect()).await;
    // No close: as after SIGKILL, the segment keeps its zero-filled preallocated tail.
    drop(store);
    let seg = dir.path().join(seg_name(1));
    let bytes = std::fs::read(&seg).expect("read seg");
    assert_eq!(bytes.len() as u64, io::PREALLOC, "the segment was preallocated");
    let mut store = LogStore::open(dir.path(), 1 << 20).expect("reopen");
    let st = store.get_log_state().await.expect("state");
    assert_eq!(st.last_log_id.map(|l| l.index), Some(10));
    append(&mut store, vec![ent(1, 11)]).await;
    assert_eq!(store.try_get_log_entries(1..=11).await.expect("read").len(), 11);
    store.close().await;
    drop(store);
    // A clean stop trims the tail; everything reads back.
    assert!(std::fs::metadata(&seg).expect("meta").len() < io::PREALLOC);
    let mut store = LogStore::open(dir.path(), 1 << 20).expect("reopen after close");
    assert_eq!(store.try_get_log_entries(1..=11).await.expect("read").len(), 11);
    store.close().await;
}
