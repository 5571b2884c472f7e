//! Fault injection in CI, bounded: each fault kind, with all three workloads at once (register,
//! bank, set), and the lock workload under pauses and kills, against three `hiqlite serve`
//! processes behind controllable proxies. Every run must end with zero anomalies. Longer runs: `hiqlite-torture` (see the README).

use std::time::Duration;

use hiqlite_tests::torture::{run, Fault, Options, Workload};

async fn torture(fault: Fault) {
    torture_with(&[fault], &[Workload::Register, Workload::Bank, Workload::Set]).await;
}

async fn torture_with(faults: &[Fault], workloads: &[Workload]) {
    let secs: u64 = std::env::var("HIQLITE_TORTURE_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(12);
    let seed =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
    let dir = tempfile::tempdir().expect("tmp");
    let o = Options {
        bin: env!("CARGO_BIN_EXE_hiqlite").into(),
        dir: dir.path().to_path_buf(),
        nodes: 3,
        duration: Duration::from_secs(secs),
        faults: faults.to_vec(),
        workloads: workloads.to_vec(),
        seed,
        history_dir: Some(std::env::temp_dir()),
    };
    let s = run(&o).await.expect("torture run");
    println!("{faults:?} (seed {seed}):\n{s}");
    if !s.anomalies.is_empty() {
        // Keep data and node logs for the post-mortem.
        let kept = dir.keep();
        panic!("anomalies under {faults:?} (seed {seed}), data and logs in {}:\n{s}", kept.display());
    }
    assert!(s.ops[0] > 0, "no operation succeeded:\n{s}");
    assert!(s.faults.values().sum::<u64>() > 0, "no fault was injected:\n{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torture_partition_one_node() {
    torture(Fault::Partition).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torture_leader_isolated_from_majority() {
    torture(Fault::Leader).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torture_one_way_cut_around_leader() {
    torture(Fault::OneWay).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torture_delayed_links() {
    torture(Fault::Delay).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torture_paused_nodes() {
    torture(Fault::Pause).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torture_killed_and_restarted_nodes() {
    torture(Fault::Kill).await;
}

/// The lock checker: six clients spread over three nodes take one lock in turn while nodes are
/// paused and killed; holders never overlap while their leases are valid, and tokens grow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torture_lock_holders_never_overlap_under_pauses_and_kills() {
    torture_with(&[Fault::Pause, Fault::Kill], &[Workload::Lock]).await;
}
